"""Latent geometry: nearest training images, interpolation smoothness, and what the
reparameterization trick buys (gradient estimator variances)."""

from __future__ import annotations

import torch

from ..datasets import to_model_input
from ..models import VAE, decode_batches


def reference_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> flat float (N, C*H*W) at (k + 0.5) / 256, the mean of the dequantised pixel
    the decoder is trained to predict."""
    return (images.permute(0, 3, 1, 2).float() + 0.5).div_(256.0).flatten(1)


@torch.no_grad()
def nearest_index(images: torch.Tensor, reference: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(B, C, H, W) images, (N, D) flat reference -> (B,) index of each one's nearest reference."""
    flat = images.flatten(1).float()
    best = torch.full((len(flat),), float("inf"))
    nearest = torch.zeros(len(flat), dtype=torch.long)
    for start in range(0, len(reference), chunk):
        block = reference[start : start + chunk]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matrix product instead of B x N differences.
        distances = flat.pow(2).sum(1, keepdim=True) + block.pow(2).sum(1) - 2 * flat @ block.T
        value, index = distances.min(dim=1)
        closer = value < best
        best = torch.where(closer, value, best)
        nearest = torch.where(closer, index + start, nearest)
    return nearest


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, steps: int) -> torch.Tensor:
    """(..., latent) ends -> (..., steps, latent): straight lines from z_start to z_end inclusive."""
    weights = torch.linspace(0, 1, steps, device=z_start.device).unsqueeze(1)  # (steps, 1)
    return (1 - weights) * z_start.unsqueeze(-2) + weights * z_end.unsqueeze(-2)


def path_steps(frames: torch.Tensor) -> torch.Tensor:
    """(steps, C, H, W) consecutive frames -> (steps - 1,) RMS change between neighbours."""
    return (frames[1:] - frames[:-1]).pow(2).flatten(1).mean(dim=1).sqrt()


def interpolation_smoothness(
    model: VAE,
    start_codes: torch.Tensor,
    end_codes: torch.Tensor,
    steps: int,
    batch_size: int = 500,
) -> dict:
    """Per path start_codes[i] -> end_codes[i] of `steps` frames: the max/mean step between frames
    (1 for an even change, up to steps - 1 for one jump), and the mean step."""
    paths = interpolate(start_codes, end_codes, steps)  # (paths, steps, latent)
    frames = decode_batches(model, paths.flatten(0, 1), batch_size=batch_size)
    frames = frames.unflatten(0, paths.shape[:2])  # (paths, steps, C, H, W)
    per_path = [path_steps(path) for path in frames]
    means = [float(step.mean()) for step in per_path]
    ratios = [float(step.max() / step.mean()) if step.mean() > 0 else 1.0 for step in per_path]
    return {
        "path_max_over_mean": float(torch.tensor(ratios).mean()),
        "path_mean_step": float(torch.tensor(means).mean()),
        "path_ratios": ratios,
        "path_mean_steps": means,
    }


def estimator_variances(
    model: VAE, images: torch.Tensor, dims: list[int], samples: int = 64, seed: int = 0
) -> dict:
    """d/dmu E_{z ~ q(z|x)}[f(z)], f the reconstruction term, estimated pathwise (z = mu + sigma *
    eps through the decoder, as `models.reparameterize`) and by the score function (REINFORCE,
    f(z) (z - mu) / sigma^2, the black-box option; a leave-one-out baseline keeps it unbiased and
    lowers its variance). images: uint8 NHWC; dims: the active ones (an unused dim has a zero
    pathwise gradient).
    Returns the median score-function / pathwise variance ratio over (image, dim), and the
    posterior std in those dims."""
    device = next(model.parameters()).device
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    x = to_model_input(images, device, generator)
    with torch.no_grad():
        mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    count, latent = mu.shape
    eps = torch.randn(samples, count, latent, generator=generator).to(device)
    mu_leaf = mu.expand(samples, count, latent).clone().requires_grad_(True)
    decoded = model.decode_params((mu_leaf + std * eps).reshape(-1, latent))  # z = mu + sigma eps
    recon = model.reconstruction_nll(x.repeat(samples, 1, 1, 1), decoded).reshape(samples, count)
    recon.sum().backward()
    pathwise = mu_leaf.grad  # (samples, images, latent): one gradient estimate per sample
    f = recon.detach()
    baseline = (f.sum(dim=0, keepdim=True) - f) / (samples - 1)  # leave-one-out mean
    score = (f - baseline).unsqueeze(-1) * eps / std
    var_path, var_score = pathwise.var(dim=0)[:, dims], score.var(dim=0)[:, dims]
    ratio = (var_score / var_path.clamp(min=1e-30)).flatten().cpu()
    return {
        "variance_ratio_median": float(ratio.median()),
        "variance_ratio_range": [float(ratio.min()), float(ratio.max())],
        "posterior_std_median": float(std[:, dims].median()),
        "images": count,
        "samples": samples,
        "dims": len(dims),
    }
