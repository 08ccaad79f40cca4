"""DenseNet-121 (Huang et al. 2017; CheXNet / torchxrayvision's architecture) in plain torch.

Only for the latency comparison in bench/latency.py (random weights): torchvision does not
import with the torch build used here, so the architecture is written out.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int, bn_size: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True),
            nn.Conv2d(bn_size * growth, growth, 3, padding=1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


def _transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, 1, bias=False),
                         nn.AvgPool2d(2, 2))


class DenseNet121(nn.Module):
    """Blocks (6, 12, 24, 16), growth 32, 64 initial features; 1-channel input, one logit."""

    def __init__(self, in_channels: int = 1, num_outputs: int = 1) -> None:
        super().__init__()
        growth, bn_size, ch = 32, 4, 64
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ch, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, stride=2, padding=1),
        ]
        for i, n in enumerate((6, 12, 24, 16)):
            for _ in range(n):
                layers.append(_DenseLayer(ch, growth, bn_size))
                ch += growth
            if i != 3:
                layers.append(_transition(ch, ch // 2))
                ch //= 2
        layers += [nn.BatchNorm2d(ch), nn.ReLU(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(ch, num_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
