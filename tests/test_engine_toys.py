"""Small stand-ins shared by the engine tests: a toy motion data set and a BatchNorm-free network.

ToyMotion: class c is a square of colour channel c moving with speed 2c px per frame (bouncing off the borders), so frame
appearance (TSN/TSM/RGB) and motion magnitude (PA) both carry the class. TinyNet has no BatchNorm,
so results do not depend on how a batch is split (accumulation, DDP shards).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset


def _bounce(x: int, limit: int) -> int:
    """Reflect a position into [0, limit] (the square bounces off the borders, no jumps)."""
    x %= 2 * limit
    return x if x <= limit else 2 * limit - x


class ToyMotion(Dataset):
    """Items (clip [V*T*m*3, S, S], label, index); noise from torch's global RNG (or per item: fixed)."""

    def __init__(self, n: int, num_classes: int = 3, num_segments: int = 4, new_length: int = 1, size: int = 32,
                 seed: int = 0, noise: float = 0.3, views: int = 1, fixed: bool = False) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.arange(n) % num_classes
        self.start = torch.randint(4, size - 10, (n, 2), generator=g)
        self.T, self.m, self.size, self.noise, self.n, self.views = num_segments, new_length, size, noise, n, views
        self.seed, self.fixed = seed, fixed  # fixed: noise seeded per item (like val/test clips)
        self.video_ids = [f"video{(n - i) * 7 % 1000:04d}" for i in range(n)]  # not in list order

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        c = int(self.labels[i])
        T, m, S = self.T, self.m, self.size
        views = []
        gen = torch.Generator().manual_seed(self.seed * 7919 + i) if self.fixed else None
        for _ in range(self.views):
            frames = torch.randn(T * m, 3, S, S, generator=gen) * self.noise  # (T*m, 3, S, S)
            y, x0 = self.start[i].tolist()
            for k in range(T * m):
                x = _bounce(x0 + 2 * c * k, S - 6)
                frames[k, c % 3, y:y + 6, x:x + 6] += 2.0
            views.append(frames.reshape(T * m * 3, S, S))  # (T*m, 3, S, S) -> (T*m*3, S, S)
        return torch.cat(views), c, i  # (V*T*m*3, S, S)


class TinyNet(nn.Module):
    """Conv + GroupNorm + dropout + linear, averaged over segments: [B, T*m*3, H, W] -> [B, C]."""

    def __init__(self, num_classes: int = 3, num_segments: int = 4, new_length: int = 1, dropout: float = 0.0,
                 modality: str = "RGB") -> None:
        super().__init__()
        self.modality, self.num_segments, self.new_length, self.num_classes = modality, num_segments, new_length, num_classes
        self.conv = nn.Conv2d(3 * new_length, 8, 3, stride=2, padding=1)
        self.norm = nn.GroupNorm(2, 8)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        x = x.reshape(b * self.num_segments, 3 * self.new_length, h, w)  # (B, T*m*3, H, W) -> (B*T, m*3, H, W)
        x = torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3))  # (B*T, 8)
        return self.fc(self.drop(x)).view(b, self.num_segments, -1).mean(dim=1)  # (B*T, C) -> (B, C)


def test_toy_motion_is_deterministic_under_a_seed():
    a, b = ToyMotion(6), ToyMotion(6)
    torch.manual_seed(1)
    x1 = a[4][0]
    torch.manual_seed(1)
    x2 = b[4][0]
    assert torch.equal(x1, x2) and x1.shape == (4 * 3, 32, 32)
    assert ToyMotion(3, new_length=4, views=2)[0][0].shape == (2 * 4 * 4 * 3, 32, 32)
