"""Small networks that train in seconds on a CPU: the MLP and the simple CNN."""

from __future__ import annotations

from torch import nn


class MLP(nn.Sequential):
    """`depth` hidden ReLU layers; the first is `hidden_dim` wide and each next one `shrink`
    times the one before (784-128-64-10 is hidden_dim 128, depth 2, shrink 0.5)."""

    def __init__(
        self,
        in_features: int,
        num_classes: int,
        hidden_dim: int,
        depth: int,
        dropout: float,
        shrink: float,
    ):
        layers: list[nn.Module] = [nn.Flatten()]
        width, hidden = in_features, float(hidden_dim)
        for _ in range(int(depth)):
            out = max(1, int(round(hidden)))
            layers += [nn.Linear(width, out), nn.ReLU(), nn.Dropout(dropout)]
            width, hidden = out, hidden * float(shrink)
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
