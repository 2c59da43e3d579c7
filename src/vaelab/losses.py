"""The objectives, in nats: summed over pixels and latent dimensions, averaged over the batch.

Likelihood: every pixel value x in [0, 1] is modelled as Normal(mean=decoder(z), sigma_c), where
sigma_c is one learned standard deviation per colour channel (`models.VAE.log_sigma`). A fixed
sigma = 1 would make the reconstruction term ~1000x too weak against the KL, so the KL would
dominate and samples would blur; learning sigma calibrates that balance from the data.

Data are 8-bit. Training and evaluation feed the model uniformly dequantised pixels
x = (k + u) / 256 with k in {0..255} and u ~ U[0, 1). By Jensen's inequality, in expectation over
u the continuous log-density bounds the discrete one: log P(k) >= E_u[log p((k + u) / 256)] - D log 256
(it need not hold for every single u). Bits per dimension therefore add log2(256) = 8 bits to the
continuous negative log-likelihood per dimension (`bits_per_dim`).

One function per objective: `vae_loss`, `ae_loss`, `classifier_loss`; each returns a dict whose
"loss" is what is minimised and whose other entries are logged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log Normal(x; mean, exp(log_sigma)) summed over every dimension but the first.

    x, mean: (B, C, H, W) or (B, D); log_sigma broadcasts against them (e.g. (1, C, 1, 1)).
    Returns (B,) nats per image.
    """
    squared = (x - mean).pow(2) * torch.exp(-2.0 * log_sigma)
    per_dim = 0.5 * (LOG_2PI + squared) + log_sigma
    return per_dim.flatten(1).sum(dim=1)


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dimension, shape (B, latent_dim), in nats."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def vae_loss(x, mean, log_sigma, mu, logvar, beta: float) -> dict[str, torch.Tensor]:
    """The beta-VAE objective and its parts, each averaged over the batch (nats per image).

    `loss` is what is minimised: recon + beta * kl. `neg_elbo` is recon + kl, the beta-free bound
    that makes models with different beta comparable.
    """
    recon = gaussian_nll(x, mean, log_sigma)  # (B,)
    kl = kl_to_standard_normal(mu, logvar).sum(dim=1)  # (B,)
    return {
        "loss": (recon + beta * kl).mean(),
        "recon": recon.mean(),
        "kl": kl.mean(),
        "neg_elbo": (recon + kl).mean(),
    }


def ae_loss(x, mean, log_sigma) -> dict[str, torch.Tensor]:
    """The plain autoencoder: the VAE's reconstruction term alone, for the fixed code z = mu."""
    recon = gaussian_nll(x, mean, log_sigma).mean()
    return {"loss": recon, "recon": recon}


def classifier_loss(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float
) -> dict[str, torch.Tensor]:
    """Cross-entropy (computed in fp32 under autocast) and the batch accuracy."""
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    return {"loss": loss, "accuracy": (logits.argmax(1) == labels).float().mean()}


def bits_per_dim(neg_elbo_nats: float, num_dims: int) -> float:
    """Negative ELBO in nats per image -> bits per dimension of the discrete 8-bit image.

    A bin of the 8-bit grid has width 1/256 on the [0, 1] scale, so (in expectation over the
    dequantisation noise) -log2 P(k) <= -log2 p(x) + D * log2(256): exactly 8 bits per dimension.
    """
    return neg_elbo_nats / (num_dims * math.log(2.0)) + math.log2(256.0)
