"""Measurements of a trained VAE: ELBO terms, bits/dim, reconstruction error, latent use, sharpness.

Used during training (per-epoch test metrics) and by the evaluate stage.
"""

from __future__ import annotations

import torch

from .data import to_model_input
from .losses import bits_per_dim, kl_to_standard_normal, vae_loss
from .models import VAE, reparameterize


@torch.no_grad()
def elbo_metrics(model: VAE, images: torch.Tensor, device: torch.device, beta: float = 1.0,
                 batch_size: int = 500, seed: int = 0) -> dict[str, float]:
    """Averages over `images` (uint8 NHWC) of the objective, its parts, MSE and bits/dim.

    One z sample per image (the standard single-sample ELBO). The dequantisation noise and z draw
    come from a forked, seeded RNG: the numbers repeat exactly and the caller's RNG is untouched.
    """
    was_training = model.training
    model.eval()
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "neg_elbo": 0.0, "mse": 0.0}
    noise = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start in range(0, len(images), batch_size):
            x = to_model_input(images[start:start + batch_size], device, noise)
            mu, logvar = model.encode(x)
            mean = model.decode(reparameterize(mu, logvar))
            parts = vae_loss(x, mean, model.log_sigma, mu, logvar, beta)
            for key in ("loss", "recon", "kl", "neg_elbo"):
                totals[key] += parts[key].item() * len(x)
            # Reconstruction error of the posterior mean, per pixel on the 0..1 scale.
            totals["mse"] += (model.decode(mu) - x).pow(2).mean(dim=(1, 2, 3)).sum().item()
    model.train(was_training)
    metrics = {key: value / len(images) for key, value in totals.items()}
    metrics["bpd"] = bits_per_dim(metrics["neg_elbo"], images[0].numel())
    return metrics


@torch.no_grad()
def posterior_stats(model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500):
    """Posterior means (N, latent) and mean KL per latent dimension (latent,) over `images`."""
    model.eval()
    means, kl_sum = [], None
    noise = torch.Generator().manual_seed(0)
    for start in range(0, len(images), batch_size):
        mu, logvar = model.encode(to_model_input(images[start:start + batch_size], device, noise))
        means.append(mu.cpu())
        kl = kl_to_standard_normal(mu, logvar).sum(dim=0).cpu()
        kl_sum = kl if kl_sum is None else kl_sum + kl
    return torch.cat(means), kl_sum / len(images)


def active_units(posterior_means: torch.Tensor, threshold: float = 0.01) -> int:
    """Latent dims whose posterior mean varies across data (Burda et al. 2016): Var_x E[z|x] > threshold."""
    return int((posterior_means.var(dim=0) > threshold).sum())


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute Laplacian of float (B, C, H, W) images in [0, 1]: the high-frequency energy
    that blur removes. Reported relative to real test images, so 1.0 means as sharp as real."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    kernel = kernel.expand(images.shape[1], 1, 3, 3).to(images)
    edges = torch.nn.functional.conv2d(images, kernel, groups=images.shape[1])
    return edges.abs().mean().item()
