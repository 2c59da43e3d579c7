"""The objectives, in nats per image on the 8-bit grid: summed over pixels and latent dimensions,
averaged over the batch.

The pixel likelihood p(image | z) is one of `LIKELIHOODS` (`params.yaml`: `runs.<run>.model.likelihood`):

* `gaussian`: Normal(mean = decoder(z), sigma_c) per pixel value, with one learned standard
  deviation per colour channel. Learning sigma calibrates the reconstruction term against the KL
  from the data, but it also lets the reconstruction outweigh any KL: halving the MSE is worth
  D/2 * ln 2 nats (1,064 on a 32x32x3 image), so beta has little scale to act against.
* `gaussian_fixed`: the same with sigma fixed: the reconstruction term has a fixed price, so the KL
  weight beta acts (the beta study's likelihood).
* `logistic_mixture`: a discretized mixture of logistics per pixel (Salimans et al. 2017,
  PixelCNN++): each of K components has a mean and a scale per channel and couples green to red
  and blue to red and green linearly, so it prices each pixel by its own uncertainty and models
  the strong correlation of the three channels of one pixel. It gives the probability of the
  8-bit value itself, so its bits/dim are exact (no dequantisation bound).

The Gaussians are densities on dequantised pixels x = (k + u) / 256 (k in {0..255}, u ~ U[0, 1)).
By Jensen's inequality, in expectation over u: log P(k) >= E_u[log p((k + u) / 256)] - D log 256
(not for every single u). `dequantised_gaussian_nll` adds that D log 256, so every likelihood
reports nats of the discrete image and bits/dim are nats / (D ln 2) for all of them.

One function per objective: `vae_loss`, `ae_loss`, `classifier_loss`; each returns a dict whose
"loss" is what is minimised and whose other entries are logged.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)
LIKELIHOODS = ("gaussian", "gaussian_fixed", "logistic_mixture")


def parameter_channels(likelihood: dict, channels: int) -> int:
    """How many values per pixel the decoder outputs for the likelihood."""
    if likelihood["kind"] == "logistic_mixture":
        if channels != 3:
            raise ValueError("the logistic mixture couples three colour channels; use gaussian")
        return 10 * likelihood["mixtures"]  # per component: weight, 3 means, 3 scales, 3 couplings
    return channels


def gaussian_nll(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """-log Normal(x; mean, exp(log_sigma)) summed over every dimension but the first.

    x, mean: (B, C, H, W) or (B, D); log_sigma broadcasts against them (e.g. (1, C, 1, 1)).
    Returns (B,) nats per image.
    """
    squared = (x - mean).pow(2) * torch.exp(-2.0 * log_sigma)
    per_dim = 0.5 * (LOG_2PI + squared) + log_sigma
    return per_dim.flatten(1).sum(dim=1)


def dequantised_gaussian_nll(x, mean, log_sigma) -> torch.Tensor:
    """`gaussian_nll` on dequantised pixels, moved to the 8-bit grid: + D log 256 nats, (B,)."""
    return gaussian_nll(x, mean, log_sigma) + x[0].numel() * math.log(256.0)


def _mixture_parts(params: torch.Tensor, mixtures: int):
    """(B, 10K, H, W) -> logits (B, K, H, W); means, log_scales, couplings, each (B, 3, K, H, W)."""
    batch, _, height, width = params.shape
    logits = params[:, :mixtures]
    rest = params[:, mixtures:].reshape(batch, 3, 3, mixtures, height, width)
    return logits, rest[:, 0], rest[:, 1].clamp(min=-7.0), torch.tanh(rest[:, 2])


def _coupled_means(means, couplings, x):
    """Channel means given the pixel's own earlier channels x (B, 3, 1, H, W): green moves with red,
    blue with red and green (the autoregression inside one pixel)."""
    red = means[:, 0]
    green = means[:, 1] + couplings[:, 0] * x[:, 0]
    blue = means[:, 2] + couplings[:, 1] * x[:, 0] + couplings[:, 2] * x[:, 1]
    return torch.stack([red, green, blue], dim=1)


def logistic_mixture_nll(x: torch.Tensor, params: torch.Tensor, mixtures: int) -> torch.Tensor:
    """-log P(k) of the 8-bit images, (B,) nats, under the discretized logistic mixture.

    x: dequantised (B, 3, H, W) = (k + u) / 256, from which the integer k is recovered exactly;
    params: (B, 10K, H, W) from the decoder. On the [-1, 1] scale bin k is centred at k / 127.5 - 1
    with half-width 1 / 255; the end bins take the logistic's whole tails.
    """
    k = torch.floor(x * 256.0).clamp(0, 255)
    centre = (k / 127.5 - 1.0).unsqueeze(2)  # (B, 3, 1, H, W)
    logits, means, log_scales, couplings = _mixture_parts(params, mixtures)
    centred = centre - _coupled_means(means, couplings, centre)
    inv_scale = torch.exp(-log_scales)
    upper = inv_scale * (centred + 1.0 / 255.0)
    lower = inv_scale * (centred - 1.0 / 255.0)
    log_cdf_upper = upper - F.softplus(upper)  # log sigmoid(upper): the bottom bin, k = 0
    log_survival_lower = -F.softplus(lower)  # log (1 - sigmoid(lower)): the top bin, k = 255
    mass = torch.sigmoid(upper) - torch.sigmoid(lower)
    middle = inv_scale * centred  # the density times the bin width, where the mass underflows
    log_density = middle - log_scales - 2.0 * F.softplus(middle) - math.log(127.5)
    log_mass = torch.where(mass > 1e-5, torch.log(mass.clamp_min(1e-12)), log_density)
    log_prob = torch.where(
        centre < -0.999, log_cdf_upper, torch.where(centre > 0.999, log_survival_lower, log_mass)
    )
    joint = log_prob.sum(dim=1) + F.log_softmax(logits, dim=1)  # (B, K, H, W)
    return -torch.logsumexp(joint, dim=1).flatten(1).sum(dim=1)


def logistic_mixture_mean(params: torch.Tensor, mixtures: int) -> torch.Tensor:
    """The mixture's mean image (B, 3, H, W) in [0, 1]: each component's coupled means, taken at
    its own mean of the earlier channels, weighted by the component probabilities."""
    logits, means, _, couplings = _mixture_parts(params, mixtures)
    red = means[:, 0]
    green = means[:, 1] + couplings[:, 0] * red
    blue = means[:, 2] + couplings[:, 1] * red + couplings[:, 2] * green
    weights = F.softmax(logits, dim=1).unsqueeze(1)  # (B, 1, K, H, W)
    mean = (torch.stack([red, green, blue], dim=1) * weights).sum(dim=2)
    return ((mean.clamp(-1.0, 1.0) + 1.0) / 2.0).contiguous()


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per latent dimension, shape (B, latent_dim), in nats
    (in fp32 under autocast: a half-precision exp(logvar) overflows at logvar > 11)."""
    mu, logvar = mu.float(), logvar.float()
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def vae_loss(recon: torch.Tensor, mu, logvar, beta: float) -> dict[str, torch.Tensor]:
    """The beta-VAE objective and its parts from the (B,) reconstruction NLL, each averaged over the
    batch (nats per image).

    `loss` is what is minimised: recon + beta * kl. `neg_elbo` is recon + kl, the beta-free bound
    that makes models with different beta comparable.
    """
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
    -log2 P per dimension: exact for the mixture, in expectation over u for the Gaussians)."""
    return neg_elbo_nats / (num_dims * math.log(2.0))
