"""The networks: a VAE with two kinds of encoder/decoder pairs, and the classifier that judges samples.

* `fc`: multilayer perceptrons on the flattened image (the classic Kingma & Welling shape).
* `conv`: stride-2 4x4 convolutions down (each halves the image side), transposed convolutions up,
  batch normalisation between; one block per entry of `widths`, so it serves 32x32 and 64x64.
* `resnet`: a small residual CIFAR-10 classifier whose features and predictions score samples.

The decoder outputs one value per pixel and channel: through a sigmoid, the Gaussian likelihood's
mean (`VAE.decode`), which every figure shows. The plain autoencoder is the VAE with z = mu.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import losses
from .datasets import to_model_input


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps, eps ~ N(0, I): gradients reach mu and logvar by a deterministic path."""
    std = torch.exp(0.5 * logvar)
    return mu + std * torch.randn_like(std)


class VAE(nn.Module):
    def __init__(self, encoder, decoder, latent_dim: int, channels: int, likelihood: dict):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder  # z -> likelihood parameters (B, C, H, W)
        self.latent_dim = latent_dim
        # log of the decoder's per-channel standard deviation: learned, or a fixed scale that
        # gives the KL (and so beta) something to act against.
        log_sigma = torch.full((1, channels, 1, 1), math.log(likelihood["sigma"]))
        if likelihood["kind"] == "gaussian":
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, C, H, W) in [0, 1] -> mu, logvar: (B, latent_dim)."""
        return self.encoder(x).chunk(2, dim=1)

    def decode_params(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> the likelihood's parameters (B, C, H, W)."""
        return self.decoder(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """z: (B, latent_dim) -> decoder mean (B, C, H, W) in [0, 1]."""
        return torch.sigmoid(self.decode_params(z))

    def reconstruction_nll(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """-log P(image | z) in nats on the 8-bit grid, (B,), for dequantised x (B, C, H, W)."""
        # fp32 under autocast too: the sums over 3,072 pixels lose the digits bits/dim is read from
        # in half precision.
        x, params = x.float(), params.float()
        return losses.dequantised_gaussian_nll(x, torch.sigmoid(params), self.log_sigma)

    def forward(self, x: torch.Tensor):
        """-> likelihood parameters of a sampled z (B, C, H, W), mu, logvar."""
        mu, logvar = self.encode(x)
        return self.decode_params(reparameterize(mu, logvar)), mu, logvar

    def decoder_sigma(self) -> float:
        """The mean decoder standard deviation (inf, not an overflow error, when it runs away)."""
        return float(self.log_sigma.detach().float().mean().exp())


def _fc_pair(latent_dim: int, image_shape: tuple[int, int, int], hidden: list[int]):
    channels, size, _ = image_shape
    down, width = [nn.Flatten()], math.prod(image_shape)
    for h in hidden:
        down += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    down.append(nn.Linear(width, 2 * latent_dim))

    up, width = [], latent_dim
    for h in reversed(hidden):
        up += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    up += [nn.Linear(width, channels * size * size), nn.Unflatten(1, (channels, size, size))]
    return nn.Sequential(*down), nn.Sequential(*up)


def _conv_pair(latent_dim: int, image_shape: tuple[int, int, int], widths: list[int]):
    channels, size, _ = image_shape
    side = size // 2 ** len(widths)  # spatial side at the bottleneck
    if side < 1 or side * 2 ** len(widths) != size:
        raise ValueError(
            f"image size {size} is not divisible by 2**{len(widths)} "
            f"(one halving per entry of widths {widths}); use fewer widths"
        )
    flat = widths[-1] * side * side

    down = []
    for w_in, w_out in zip([channels, *widths], widths, strict=False):
        down += _normalised(nn.Conv2d(w_in, w_out, 4, stride=2, padding=1, bias=False))
    down += [nn.Flatten(), nn.Linear(flat, 2 * latent_dim)]

    # No normalisation right after the code: batch statistics there would cancel the scale of z,
    # letting the encoder inflate its variance early in training at no reconstruction cost.
    up = [nn.Linear(latent_dim, flat), nn.Unflatten(1, (widths[-1], side, side)), nn.LeakyReLU(0.2)]
    for w_in, w_out in zip(widths[::-1], widths[::-1][1:], strict=False):
        up += _normalised(nn.ConvTranspose2d(w_in, w_out, 4, stride=2, padding=1, bias=False))
    up.append(nn.ConvTranspose2d(widths[0], channels, 4, stride=2, padding=1))
    return nn.Sequential(*down), nn.Sequential(*up)


def _normalised(conv: nn.Module) -> list[nn.Module]:
    """A bias-free (transposed) convolution, then batch normalisation and LeakyReLU."""
    return [conv, nn.BatchNorm2d(conv.out_channels), nn.LeakyReLU(0.2)]


def _conv_bn(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(channels, channels), _conv_bn(channels, channels))

    def forward(self, x):
        return x + self.body(x)


class Classifier(nn.Module):
    """x: (B, 3, 32, 32) in [0, 1] -> logits (B, 10); `features(x)` -> (B, num_features)."""

    def __init__(self, width: int = 24):
        super().__init__()
        c = width
        # Per-channel input normalisation, set from the training images before training.
        self.register_buffer("mean", torch.zeros(1, 3, 1, 1))
        self.register_buffer("std", torch.ones(1, 3, 1, 1))
        self.body = nn.Sequential(
            _conv_bn(3, c),
            _conv_bn(c, 2 * c),
            nn.MaxPool2d(2),
            Residual(2 * c),  # 16x16
            _conv_bn(2 * c, 4 * c),
            nn.MaxPool2d(2),  # 8x8
            _conv_bn(4 * c, 8 * c),
            nn.MaxPool2d(2),
            Residual(8 * c),  # 4x4
            nn.AdaptiveMaxPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(8 * c, 10, bias=False)
        self.num_features = 8 * c

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body((x - self.mean) / self.std)

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features) / 8  # a fixed temperature keeps early logits small

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(self.features(x))


def build_model(config: dict) -> nn.Module:
    """A model from its JSON-able config: arch and sizes, plus image_size and channels."""
    arch = config["arch"]
    if arch == "resnet":
        return Classifier(config["width"])
    size = config.get("image_size", 32)
    image_shape = (config.get("channels", 3), size, size)
    likelihood = config.get("likelihood", {"kind": "gaussian", "sigma": 0.1})
    if arch == "fc":
        pair = _fc_pair(config["latent_dim"], image_shape, list(config["hidden"]))
    elif arch == "conv":
        pair = _conv_pair(config["latent_dim"], image_shape, list(config["widths"]))
    else:
        raise ValueError(f"unknown arch {arch!r}; choose fc, conv or resnet")
    return VAE(*pair, config["latent_dim"], image_shape[0], likelihood)


# The batched passes every evaluation uses: eval mode, no gradients, results on the CPU.
def _eval_device(model: nn.Module, device) -> torch.device:
    """Puts `model` in eval mode; returns `device`, by default the model's."""
    model.eval()
    return device or next(model.parameters()).device


def dequantised_batches(images: torch.Tensor, device, batch_size: int, seed: int):
    """uint8 (N, H, W, C) -> float (B, C, H, W) batches, dequantised from one seeded noise stream:
    every measurement of the same images sees the same model input."""
    noise = torch.Generator().manual_seed(seed)
    for start in range(0, len(images), batch_size):
        yield to_model_input(images[start : start + batch_size], device, noise)


@torch.no_grad()
def encode_batches(
    model: VAE,
    images: torch.Tensor,
    device: torch.device | None = None,
    batch_size: int = 500,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 (N, H, W, C) -> mu, logvar (N, latent_dim), with seeded dequantisation noise."""
    device = _eval_device(model, device)
    pairs = [model.encode(x) for x in dequantised_batches(images, device, batch_size, seed)]
    mu, logvar = zip(*pairs, strict=True)  # the (mu, logvar) of every batch, unzipped
    return torch.cat(mu).float().cpu(), torch.cat(logvar).float().cpu()


@torch.no_grad()
def decode_batches(
    model: VAE, codes: torch.Tensor, device: torch.device | None = None, batch_size: int = 500
) -> torch.Tensor:
    """(N, latent_dim) codes -> decoder means (N, C, H, W) in [0, 1]."""
    device = _eval_device(model, device)
    batches = codes.split(batch_size)
    return torch.cat([model.decode(z.to(device)).float().cpu().clamp(0, 1) for z in batches])


def reconstruct_batches(
    model: VAE, images: torch.Tensor, device: torch.device | None = None, batch_size: int = 500
) -> torch.Tensor:
    """uint8 (N, H, W, C) -> decode(mu): the deterministic reconstruction, (N, C, H, W)."""
    mu, _ = encode_batches(model, images, device, batch_size)
    return decode_batches(model, mu, device, batch_size)


@torch.no_grad()
def classify_batches(
    classifier: Classifier,
    images: torch.Tensor,
    device: torch.device | None = None,
    batch_size: int = 500,
) -> tuple[torch.Tensor, torch.Tensor]:
    """float (N, 3, H, W) in [0, 1] -> features (N, num_features), logits (N, classes): the mean
    logits of the image and its mirror (test-time augmentation)."""
    device = _eval_device(classifier, device)
    features, logits = [], []
    for batch in images.split(batch_size):
        x = batch.to(device).contiguous(memory_format=torch.channels_last)
        f = classifier.features(x)
        out = (classifier.logits(f) + classifier(torch.flip(x, dims=[3]))) / 2
        features.append(f.float().cpu())
        logits.append(out.float().cpu())
    return torch.cat(features), torch.cat(logits)
