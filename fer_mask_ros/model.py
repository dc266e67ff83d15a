"""The masked-face expression network: a compact VGG/ResNet hybrid with two heads.

Input: a grey face crop, float tensor (N, 1, S, S) scaled to [0, 1] (S = INPUT_SIZE).
Outputs: emotion logits (N, 7) and mask-present logit (N,).
"""
from __future__ import annotations

import torch
from torch import nn

from .labels import EMOTIONS

INPUT_SIZE = 48


def _conv_bn(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.body(x))


class MaskedFERNet(nn.Module):
    """Stages of (conv-bn-relu, residual block, max-pool); widths set the cost."""

    def __init__(self, widths: tuple = (32, 64, 128, 256), dropout: float = 0.3) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        layers = []
        cin = 1
        for i, w in enumerate(self.widths):
            layers.append(_conv_bn(cin, w))
            layers.append(ResidualBlock(w))
            if i < len(self.widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout)
        self.emotion_head = nn.Linear(cin, len(EMOTIONS))
        self.mask_head = nn.Linear(cin, 1)

    def forward(self, x: torch.Tensor):
        feat = self.pool(self.features(x)).flatten(1)
        feat = self.dropout(feat)
        return self.emotion_head(feat), self.mask_head(feat).squeeze(1)
