"""LungLensNet: a compact single-channel CNN for 224x224 radiographs, shaped for Grad-CAM.

Plain 3x3 conv/BN/ReLU stages with residual blocks (cheap to train on a CPU, fast in ONNX
Runtime), a last feature map of 7x7, global average pooling, dropout and one linear unit.
With GAP + linear, d logit / d features is exactly weight[c] / (h*w) everywhere, so the
export wrapper computes it inside the graph and the app needs no autograd.
"""

from __future__ import annotations

import torch
import torch.nn as nn


def conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv1 = conv_bn(ch, ch)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn2(self.conv2(self.conv1(x))))


class LungLensNet(nn.Module):
    """1x224x224 -> stem /2 -> four stages /2 each -> C x 7 x 7 -> GAP -> dropout -> logit.

    ``blocks[i]`` says whether stage i has a residual block after its stride-2 conv; the
    default skips it at 56x56, where it cost a third of the latency for little accuracy.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64, 128, 256),
        blocks: tuple[bool, ...] = (False, True, True, True),
        dropout: float = 0.3,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) - 1:
            raise ValueError(f"need one blocks flag per stage: {len(widths) - 1}, got {len(blocks)}")
        layers: list[nn.Module] = [conv_bn(1, widths[0], stride=2)]
        for (cin, cout), block in zip(zip(widths[:-1], widths[1:]), blocks):
            layers.append(conv_bn(cin, cout, stride=2))
            if block:
                layers.append(ResBlock(cout))
        self.body = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], 1)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        # Zero-init the last BN of each residual branch: blocks start as identities.
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.bn2.weight)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last conv map (Grad-CAM's target layer), after ReLU."""
        return self.body(x)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(feats.mean(dim=(2, 3))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))


class ExportWrapper(nn.Module):
    """The ONNX graph: image -> (logit [N,1], features [N,C,h,w], features_grad [N,C,h,w])."""

    def __init__(self, model: LungLensNet, size: tuple[int, int] = (224, 224)) -> None:
        super().__init__()
        self.model = model
        with torch.no_grad():  # the map size is fixed by the input size: a graph constant
            h, w = model.eval().features(torch.zeros(1, 1, *size)).shape[2:]
        self.map_area = float(h * w)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.model.features(image)
        logit = self.model.classify(feats)
        per_channel = self.model.head.weight.reshape(1, -1, 1, 1) / self.map_area
        grad = torch.zeros_like(feats) + per_channel
        return logit, feats, grad


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
