"""Likelihood-side measurements: the ELBO and its parts, bits/dim, reconstruction error, the active
latent dims and the judge's test accuracy; per epoch in training and in the evaluate stage. Each
leaves the model in eval mode (train.fit sets train mode at the start of every epoch)."""

from __future__ import annotations

import torch

from ..datasets import to_display
from ..losses import bits_per_dim, vae_loss
from ..models import VAE, Classifier, classify_batches, dequantised_batches, reparameterize


def _squared_error_sum(mean: torch.Tensor, x: torch.Tensor) -> float:
    """Per-pixel MSE on the 0..1 scale of each image of the batch, summed over the batch."""
    return (mean - x).pow(2).mean(dim=(1, 2, 3)).sum().item()


@torch.no_grad()
def elbo_metrics(
    model: VAE,
    images: torch.Tensor,
    device: torch.device,
    beta: float = 1.0,
    batch_size: int = 500,
    seed: int = 0,
) -> dict[str, float]:
    """Averages over uint8 NHWC `images` of the objective, its parts, MSE and bits/dim, from one z
    per image, drawn (with the dequantisation noise) from a forked, seeded RNG: the numbers repeat
    exactly and the caller's RNG is untouched."""
    totals = {"loss": 0.0, "recon": 0.0, "kl": 0.0, "neg_elbo": 0.0, "mse": 0.0}
    cuda = [device] if device.type == "cuda" else []
    model.eval()
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for x in dequantised_batches(images, device, batch_size, seed):
            mu, logvar = model.encode(x)
            recon = model.reconstruction_nll(x, model.decode_params(reparameterize(mu, logvar)))
            parts = vae_loss(recon, mu, logvar, beta)
            for key in ("loss", "recon", "kl", "neg_elbo"):
                totals[key] += parts[key].item() * len(x)
            # Reconstruction error of the posterior mean, not of the sampled z.
            totals["mse"] += _squared_error_sum(model.decode(mu), x)
    metrics = {key: value / len(images) for key, value in totals.items()}
    metrics["bpd"] = bits_per_dim(metrics["neg_elbo"], images[0].numel())
    return metrics


@torch.no_grad()
def autoencoder_metrics(
    model: VAE, images: torch.Tensor, device: torch.device, batch_size: int = 500, seed: int = 0
) -> dict[str, float]:
    """Reconstruction NLL (nats/image) and per-pixel MSE of the plain autoencoder's code z = mu,
    with seeded dequantisation noise."""
    recon = mse = 0.0
    model.eval()
    for x in dequantised_batches(images, device, batch_size, seed):
        decoded = model.decode_params(model.encode(x)[0])
        recon += model.reconstruction_nll(x, decoded).sum().item()
        mse += _squared_error_sum(torch.sigmoid(decoded), x)  # the decoder mean
    return {"recon": recon / len(images), "mse": mse / len(images)}


def active_mask(posterior_means: torch.Tensor, threshold: float = 0.01) -> torch.Tensor:
    """(latent,) bool: the active dims (Burda et al. 2016), Var_x E[z|x] > threshold."""
    return posterior_means.var(dim=0) > threshold


def classifier_accuracy(
    model: Classifier,
    images_uint8: torch.Tensor,
    labels: torch.Tensor,
    device: torch.device,
    batch_size: int = 500,
) -> float:
    """Top-1 accuracy of the judge on uint8 (N, H, W, C) images, with flip-averaged logits."""
    _, logits = classify_batches(model, to_display(images_uint8), device, batch_size)
    return (logits.argmax(1) == labels).float().mean().item()
