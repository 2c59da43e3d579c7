"""How a latent space behaves between and away from the training codes: the evidence for why a
VAE's KL term gives a space one can sample from and walk through, measured the same way for a VAE
and for a plain autoencoder.

* Prior samples: decode z ~ N(0, I) and measure how far each image is from the nearest training
  image (per-pixel MSE). A space shaped like the prior decodes such z to shapes; a code that only
  has to be decodable at the training points need not.
* Interpolation smoothness: decode `steps` frames on the straight line between the codes of two
  test images and measure the change between consecutive frames (RMS over pixels). `max / mean`
  of those steps is 1 when the image changes evenly along the path and approaches steps - 1 when
  it all happens in one jump. The path's midpoint is also checked against the training images.
"""

from __future__ import annotations

import torch

from .figures import decode, interpolate
from .models import VAE


def reference_pixels(images: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> flat float (N, C*H*W) on the model's scale: (k + 0.5) / 256, the mean of the
    dequantised pixel the decoder is trained to predict."""
    return (images.permute(0, 3, 1, 2).float() + 0.5).div_(256.0).flatten(1)


@torch.no_grad()
def nearest_neighbour_mse(images: torch.Tensor, reference: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """(B, C, H, W) float images, (N, D) flat reference -> (B,) per-pixel MSE to the nearest reference."""
    flat = images.flatten(1).float()
    best = torch.full((len(flat),), float("inf"))
    nearest = torch.zeros(len(flat), dtype=torch.long)
    for start in range(0, len(reference), chunk):
        block = reference[start:start + chunk]
        # |a - b|^2 = |a|^2 + |b|^2 - 2 a.b: one matrix product instead of B x N differences; it
        # finds the neighbour, whose distance is then recomputed directly (float32 cancellation).
        distances = flat.pow(2).sum(1, keepdim=True) + block.pow(2).sum(1) - 2 * flat @ block.T
        value, index = distances.min(dim=1)
        closer = value < best
        best = torch.where(closer, value, best)
        nearest = torch.where(closer, index + start, nearest)
    return (flat - reference[nearest]).pow(2).mean(dim=1)


def prior_sample_distance(model: VAE, reference: torch.Tensor, count: int, seed: int) -> dict:
    """Mean and median nearest-training-image MSE of `count` decoded z ~ N(0, I)."""
    z = torch.randn(count, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    distances = nearest_neighbour_mse(decode(model, z), reference)
    return {"prior_nn_mse": float(distances.mean()), "prior_nn_mse_median": float(distances.median())}


def path_steps(frames: torch.Tensor) -> torch.Tensor:
    """(steps, C, H, W) consecutive frames -> (steps - 1,) RMS change between neighbours."""
    return (frames[1:] - frames[:-1]).pow(2).flatten(1).mean(dim=1).sqrt()


def interpolation_smoothness(model: VAE, start_codes: torch.Tensor, end_codes: torch.Tensor, steps: int,
                             reference: torch.Tensor) -> dict:
    """Per path (start_codes[i] -> end_codes[i]): max/mean step and mean step; the midpoints'
    nearest-training-image MSE."""
    ratios, means, midpoints = [], [], []
    for a, b in zip(start_codes, end_codes):
        frames = decode(model, interpolate(a, b, steps))
        step = path_steps(frames)
        means.append(float(step.mean()))
        ratios.append(float(step.max() / step.mean()) if step.mean() > 0 else 1.0)
        midpoints.append(frames[steps // 2])
    midpoint_mse = nearest_neighbour_mse(torch.stack(midpoints), reference)
    return {"path_max_over_mean": float(torch.tensor(ratios).mean()),
            "path_mean_step": float(torch.tensor(means).mean()),
            "midpoint_nn_mse": float(midpoint_mse.mean()), "path_ratios": ratios, "path_mean_steps": means}
