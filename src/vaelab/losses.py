"""The objectives, in nats per image on the 8-bit grid: summed over pixels and latent dimensions,
averaged over the batch.

The pixel likelihood p(image | z) is one of `LIKELIHOODS` (`params.yaml`: `runs.<run>.model.likelihood`):

* `gaussian`: Normal(mean = decoder(z), sigma_c) per pixel value, with one learned standard
  deviation per colour channel. Learning sigma calibrates the reconstruction term against the KL
  from the data, but it also lets the reconstruction outweigh any KL: halving the MSE is worth
  D/2 * ln 2 nats (1,064 on a 32x32x3 image), so beta has little scale to act against.
* `gaussian_fixed`: the same with sigma fixed: the reconstruction term has a fixed price, so the KL
  weight beta acts (the beta study's likelihood).

The Gaussians are densities on dequantised pixels x = (k + u) / 256 (k in {0..255}, u ~ U[0, 1)).
By Jensen's inequality, in expectation over u: log P(k) >= E_u[log p((k + u) / 256)] - D log 256
(not for every single u). `dequantised_gaussian_nll` adds that D log 256, so every likelihood
reports nats of the discrete image and bits/dim are nats / (D ln 2).

Each objective returns a dict whose "loss" is minimised and whose other entries are logged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS = ("gaussian", "gaussian_fixed")


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log Normal(x; mean, exp(log_sigma)) summed over every dim but the first: (B,) nats for x,
    mean (B, C, H, W) or (B, D), log_sigma broadcasting against them (e.g. (1, C, 1, 1))."""
    squared = (x - mean).pow(2) * torch.exp(-2.0 * log_sigma)
    per_dim = 0.5 * (LOG_2PI + squared) + log_sigma
    return per_dim.flatten(1).sum(dim=1)


def dequantised_gaussian_nll(x, mean, log_sigma) -> torch.Tensor:
    """`gaussian_nll` on dequantised pixels, moved to the 8-bit grid: + D log 256 nats, (B,)."""
    return gaussian_nll(x, mean, log_sigma) + x[0].numel() * math.log(256.0)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dimension, shape (B, latent_dim), in nats
    (in fp32 under autocast: a half-precision exp(logvar) overflows at logvar > 11)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def vae_loss(recon: torch.Tensor, mu, logvar, beta: float) -> dict[str, torch.Tensor]:
    """The beta-VAE objective and its parts from the (B,) reconstruction NLL, in nats per image
    averaged over the batch: `loss` = recon + beta * kl is minimised; `neg_elbo` = recon + kl, the
    beta-free bound, compares models of different beta."""
    kl = kl_to_standard_normal(mu, logvar).sum(dim=1)  # (B,)
    return {
        "loss": (recon + beta * kl).mean(),
        "recon": recon.mean(),
        "kl": kl.mean(),
        "neg_elbo": (recon + kl).mean(),
    }


def ae_loss(recon: torch.Tensor) -> dict[str, torch.Tensor]:
    """The plain autoencoder: the VAE's reconstruction term alone, for the fixed code z = mu."""
    return {"loss": recon.mean(), "recon": recon.mean()}


def classifier_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float
) -> dict[str, torch.Tensor]:
    """Cross-entropy (computed in fp32 under autocast) and the batch accuracy."""
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    return {"loss": loss, "accuracy": (logits.argmax(1) == labels).float().mean()}


def bits_per_dim(neg_elbo_nats: float, num_dims: int) -> float:
    """Negative ELBO in nats per 8-bit image -> bits per dimension (an upper bound on the model's
    -log2 P per dimension, in expectation over u)."""
    return neg_elbo_nats / (num_dims * math.log(2.0))
