"""Autoencoder baseline: an autoencoder (convolutional for (N, C, H, W) images, MLP for (N, D)
vectors; :mod:`omasgan.autoencoders`) trained on the normals with Adam for a fixed number of
epochs; the score is the sample's mean squared reconstruction error over its features,
r(x) = mean_f (dec(enc(x))_f - x_f)^2."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..autoencoders import reconstruction_error, seeded_autoencoder, train_autoencoder
from .protocol import BaselineDetector

SCORE_CHUNK = 4096
"""Samples per forward pass when the autoencoder scores."""


def _tensor(X: Any, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(X, dtype=torch.float32).to(device)


class AutoencoderDetector(BaselineDetector):
    """Reconstruction error of an autoencoder trained on the normals.  Its initial weights come from
    ``torch.manual_seed(random_state)`` and its batch order from a generator seeded with
    ``random_state + 1`` (the caller's RNG state is kept); ``latent_dim=None`` is
    min(32, n_features // 4) for images, min(32, n_features // 2) for vectors (at least 1)."""

    def __init__(self, epochs: int = 30, lr: float = 1e-3, batch_size: int = 128, latent_dim: int | None = None,
                 width: int = 32, random_state: int = 0, device: str | torch.device = "cpu",
                 contamination: float = 0.05) -> None:
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.latent_dim = latent_dim
        self.width = width
        self.random_state = random_state
        self.device = device
        self.contamination = contamination

    def fit(self, X: Any, y: Any = None) -> "AutoencoderDetector":
        device = torch.device(self.device)
        train = _tensor(X, device)
        seed = int(self.random_state)
        self.model_ = seeded_autoencoder(tuple(train.shape[1:]), train.dim() == 4, self.latent_dim or 0, self.width,
                                         seed=seed, device=device, key="baseline.latent_dim")
        loss = train_autoencoder(self.model_, train, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                                 seed=seed + 1, name="baseline ae", lr_key="baseline.lr")
        self.history_ = {"loss": loss}
        self.fit_threshold(train)
        return self

    @torch.no_grad()
    def decision_function(self, X: Any) -> np.ndarray:
        """Mean squared reconstruction error of each sample over its features."""
        device = torch.device(self.device)
        x = torch.as_tensor(X, dtype=torch.float32)
        parts = [reconstruction_error(self.model_, x[i:i + SCORE_CHUNK].to(device)).cpu()
                 for i in range(0, len(x), SCORE_CHUNK)]
        return torch.cat(parts).double().numpy()
