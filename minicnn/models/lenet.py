"""LeNet-5 style CNN (LeCun et al. 1998) for 32×32 images, with ReLU and max pooling:

conv5×5 → 6×28×28, ReLU, maxpool2 → 6×14×14
conv5×5 → 16×10×10, ReLU, maxpool2 → 16×5×5
flatten 400 → linear 120, ReLU → linear 84, ReLU → linear classes
"""

from __future__ import annotations

from minicnn import nn


class LeNet(nn.Module):
    """``x: (N, in_channels, 32, 32) -> logits (N, num_classes)``."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 6, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.ReLU(),
            nn.Linear(120, 84),
            nn.ReLU(),
            nn.Linear(84, num_classes),
        )

    def forward(self, x):
        if x.ndim != 4 or x.shape[-2:] != (32, 32):
            raise ValueError(f"LeNet expects input (N, C, 32, 32), got shape {x.shape}")
        return self.classifier(self.features(x))


def lenet(num_classes: int = 10, in_channels: int = 1) -> LeNet:
    """LeNet-5 style CNN (see :class:`LeNet`)."""
    return LeNet(num_classes, in_channels)
