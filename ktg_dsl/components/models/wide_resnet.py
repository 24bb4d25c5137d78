"""Wide Residual Networks (Zagoruyko & Komodakis 2016), WRN-depth-width.

depth = 6n + 4: a 3x3 stem with 16 channels, three groups of n pre-activation blocks with
16k, 32k and 64k channels (k = width; groups 2 and 3 halve the resolution), a final
BN-ReLU, global average pooling and a linear head. WRN-28-10 has about 36.5M parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-BN-ReLU-(dropout)-conv3x3, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, dropout: float) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.dropout = dropout
        # a 1x1 projection only where the identity cannot match the output's shape
        self.shortcut: nn.Conv2d | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = F.relu(self.bn1(x))
        out = self.conv1(pre)
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, p=self.dropout, training=self.training)
        out = self.conv2(out)
        # the projection reads the pre-activated input, as in the paper's code: the raw input
        # of a block is an unnormalised sum of residuals
        skip = x if self.shortcut is None else self.shortcut(pre)
        return out + skip


class WideResNet(nn.Module):
    def __init__(
        self,
        depth: int,
        width: int,
        num_classes: int = 10,
        in_channels: int = 3,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"a Wide-ResNet's depth is 6n+4 with n >= 1, got {depth}")
        if width < 1:
            raise ValueError(f"a Wide-ResNet's width is at least 1, got {width}")
        n = (depth - 4) // 6
        self.depth = depth
        self.width = width

        self.conv1 = _conv3x3(in_channels, 16)
        groups: list[nn.Module] = []
        channels = 16
        for i, base in enumerate((16, 32, 64)):
            blocks = []
            for j in range(n):
                stride = 2 if i > 0 and j == 0 else 1
                blocks.append(PreActBlock(channels, base * width, stride, dropout))
                channels = base * width
            groups.append(nn.Sequential(*blocks))
        self.block1, self.block2, self.block3 = groups
        # pre-activation blocks end on a conv, so the trunk needs one last BN-ReLU
        self.bn = nn.BatchNorm2d(channels)
        self.fc = nn.Linear(channels, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.block3(self.block2(self.block1(x)))
        x = F.relu(self.bn(x))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)
