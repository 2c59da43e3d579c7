"""Variational autoencoders: one VAE wrapper, two kinds of encoder/decoder pairs.

* `fc`: multilayer perceptrons on the flattened image (the classic Kingma & Welling shape).
* `conv`: stride-2 4x4 convolutions down (each halves the image side), transposed convolutions up,
  batch normalisation between. The number of blocks is `len(widths)`, so the same code serves
  32x32 and 64x64 images.

Both end in a sigmoid mean in [0, 1] and share a learned per-channel decoder scale; the likelihood
is described in `losses.py`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

ARCHITECTURES = ("fc", "conv")


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): the randomness is an input, so gradients reach
    mu and logvar through a deterministic, differentiable path."""
    std = torch.exp(0.5 * logvar)
    return mu + std * torch.randn_like(std)


class VAE(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, channels: int,
                 initial_sigma: float):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.latent_dim = latent_dim
        # log of the decoder's per-channel standard deviation, learned with the rest.
        self.log_sigma = nn.Parameter(torch.full((1, channels, 1, 1), math.log(initial_sigma)))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> mu, logvar: (B, latent_dim)."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> decoder mean (B, C, H, W) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


def _fc_pair(latent_dim: int, image_shape: tuple[int, int, int], hidden: list[int]):
    pixels = math.prod(image_shape)
    down, width = [nn.Flatten()], pixels
    for h in hidden:
        down += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    down.append(nn.Linear(width, 2 * latent_dim))

    up, width = [], latent_dim
    for h in reversed(hidden):
        up += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    up += [nn.Linear(width, pixels), nn.Sigmoid(), nn.Unflatten(1, image_shape)]
    return nn.Sequential(*down), nn.Sequential(*up)


def _conv_pair(latent_dim: int, image_shape: tuple[int, int, int], widths: list[int]):
    channels, size, _ = image_shape
    side = size // 2 ** len(widths)  # spatial side at the bottleneck
    if side < 1 or side * 2 ** len(widths) != size:
        raise ValueError(f"image size {size} is not divisible by 2**{len(widths)} "
                         f"(one halving per entry of widths {widths}); use fewer widths")
    flat = widths[-1] * side * side

    down, previous = [], channels
    for w in widths:
        down += [nn.Conv2d(previous, w, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w),
                 nn.LeakyReLU(0.2)]
        previous = w
    down += [nn.Flatten(), nn.Linear(flat, 2 * latent_dim)]

    # No normalisation right after the code: batch statistics there would cancel the scale of z,
    # letting the encoder inflate its variance early in training at no reconstruction cost.
    up = [nn.Linear(latent_dim, flat), nn.Unflatten(1, (widths[-1], side, side)), nn.LeakyReLU(0.2)]
    for w_in, w_out in zip(widths[::-1], widths[::-1][1:]):
        up += [nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1, bias=False), nn.BatchNorm2d(w_out),
               nn.LeakyReLU(0.2)]
    up += [nn.ConvTranspose2d(widths[0], channels, 4, stride=2, padding=1), nn.Sigmoid()]
    return nn.Sequential(*down), nn.Sequential(*up)


def build_model(config: dict) -> VAE:
    """Build a VAE from its JSON-able config (the `model` part of a params section)."""
    arch = config["arch"]
    image_shape = (config.get("channels", 3), config.get("image_size", 32), config.get("image_size", 32))
    if arch == "fc":
        encoder, decoder = _fc_pair(config["latent_dim"], image_shape, list(config["hidden"]))
    elif arch == "conv":
        encoder, decoder = _conv_pair(config["latent_dim"], image_shape, list(config["widths"]))
    else:
        raise ValueError(f"unknown arch {arch!r}; choose one of {ARCHITECTURES}")
    return VAE(encoder, decoder, config["latent_dim"], image_shape[0],
               config.get("initial_sigma", 0.1))
