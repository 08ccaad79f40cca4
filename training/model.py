"""LungLensNet: a compact single-channel CNN for 224x224 radiographs, shaped for attribution.

Conv/BN/ReLU stages with residual blocks (cheap to train on a CPU, fast in ONNX Runtime), a
last feature map of 14x14 (one cell per 16x16 input pixels), global average pooling, dropout
and one linear unit. With GAP + linear, d logit / d features is exactly weight[c] / (h*w)
everywhere, so the export wrapper computes it inside the graph and the app needs no autograd.

Every downsampling is a 4x4 convolution with stride 2 and padding 1. A 3x3, stride-2, pad-1
convolution on an even size reads the padding on the top and left only (its taps for output
i are 2i-1..2i+1, so the last column's right neighbour is never read): the network then
sees the two sides of a film differently, which showed as attributions piling up on the
right edge (model 1.0). A 4x4 kernel reads 2i-1..2i+2: one padded pixel on each side, and
output cell i is centred on input 2i+0.5 exactly, so the map lines up with the pixels.
"""

from __future__ import annotations

import torch
import torch.nn as nn


PADDINGS = ("zeros", "replicate")


def conv_bn(cin: int, cout: int, stride: int = 1, padding: str = "zeros") -> nn.Sequential:
    """3x3 (stride 1) or 4x4 (stride 2) conv, BN, ReLU; both pad symmetrically, with zeros or
    (``"replicate"``) the edge pixel, so that a uniform image stays uniform at every layer."""
    kernel = 3 if stride == 1 else 4
    if stride not in (1, 2):
        raise ValueError(f"stride must be 1 or 2, got {stride}")
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=1, bias=False, padding_mode=padding),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut."""

    def __init__(self, ch: int, padding: str = "zeros") -> None:
        super().__init__()
        self.conv1 = conv_bn(ch, ch, padding=padding)
        self.conv2 = nn.Conv2d(ch, ch, 3, padding=1, bias=False, padding_mode=padding)
        self.bn2 = nn.BatchNorm2d(ch)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.bn2(self.conv2(self.conv1(x))))


class LungLensNet(nn.Module):
    """1x224x224 -> stem /2 -> stages -> C x 14 x 14 -> GAP -> dropout -> logit.

    Stage i maps widths[i] to widths[i+1] with a conv of stride ``strides[i]`` followed, if
    ``blocks[i]``, by a residual block. The default halves three times after the stem (total
    stride 16) and keeps the last, widest stage at 14x14 so the attribution map has 14x14
    cells; it skips the residual block at 56x56, where it costs much and adds little.
    """

    def __init__(
        self,
        widths: tuple[int, ...] = (16, 32, 64, 128, 192),
        blocks: tuple[bool, ...] = (False, True, True, True),
        strides: tuple[int, ...] = (2, 2, 2, 1),
        dropout: float = 0.3,
        padding: str = "zeros",
    ) -> None:
        super().__init__()
        if not len(blocks) == len(strides) == len(widths) - 1:
            raise ValueError(f"need one blocks flag and one stride per stage: {len(widths) - 1}, "
                             f"got {len(blocks)} and {len(strides)}")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}")
        self.config = {"widths": tuple(widths), "blocks": tuple(blocks), "strides": tuple(strides)}
        if padding != "zeros":  # recorded only when it differs, so older checkpoints read the same
            self.config["padding"] = padding
        layers: list[nn.Module] = [conv_bn(1, widths[0], stride=2, padding=padding)]
        for (cin, cout), block, stride in zip(zip(widths[:-1], widths[1:]), blocks, strides):
            layers.append(conv_bn(cin, cout, stride=stride, padding=padding))
            if block:
                layers.append(ResBlock(cout, padding))
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

    def pooled(self, feats: torch.Tensor) -> torch.Tensor:
        """GAP then dropout: what the head reads (and, in training, the subtype unit)."""
        return self.dropout(feats.mean(dim=(2, 3)))

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(feats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def feature_weights(self) -> torch.Tensor:
        """d logit / d (pooled feature c), [C]: the head's weights."""
        return self.head.weight.reshape(-1)


class Ensemble(nn.Module):
    """Several LungLensNets as one graph: the mean of their logits.

    Their feature maps are concatenated along channels, so Grad-CAM over the ensemble is
    the mean of the members' maps; the gate's pooled features are the members' side by side.
    """

    def __init__(self, members: list[LungLensNet]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.widths = [m.head.in_features for m in members]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m.features(x) for m in self.members], dim=1)

    def classify(self, feats: torch.Tensor) -> torch.Tensor:
        parts = torch.split(feats, self.widths, dim=1)
        return torch.stack([m.classify(f) for m, f in zip(self.members, parts)]).mean(dim=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify(self.features(x))

    def feature_weights(self) -> torch.Tensor:
        return torch.cat([m.feature_weights() for m in self.members]) / len(self.members)


class ExportWrapper(nn.Module):
    """The ONNX graph: image -> (logit [N,1], features [N,C,h,w], features_grad [N,C,h,w])."""

    def __init__(self, model: LungLensNet | Ensemble, size: tuple[int, int]) -> None:
        super().__init__()
        self.model = model
        with torch.no_grad():  # the map size is fixed by the input size: a graph constant
            h, w = model.eval().features(torch.zeros(1, 1, *size)).shape[2:]
        self.map_area = float(h * w)

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        feats = self.model.features(image)
        logit = self.model.classify(feats)
        per_channel = self.model.feature_weights().reshape(1, -1, 1, 1) / self.map_area
        grad = torch.zeros_like(feats) + per_channel
        return logit, feats, grad


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
