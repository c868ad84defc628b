"""Small networks that train in seconds on a CPU: the MLP and the simple CNN."""

from __future__ import annotations

from torch import nn


class MLP(nn.Sequential):
    def __init__(
        self, in_features: int, num_classes: int, hidden_dim: int, depth: int, dropout: float
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for _ in range(int(depth)):
            layers += [nn.Linear(width, int(hidden_dim)), nn.ReLU(), nn.Dropout(dropout)]
            width = int(hidden_dim)
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)


class SimpleCNN(nn.Sequential):
    """conv-pool-conv-pool-fc; padding keeps the side so 8x8 inputs still pool twice."""

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        width: int,
        hidden_dim: int,
        dropout: float,
    ):
        width = int(width)
        side = image_size // 4
        super().__init__(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * side * side, int(hidden_dim)),
            nn.ReLU(),
            nn.Linear(int(hidden_dim), num_classes),
        )
