"""How much generated images look like the data, judged by the project's own classifier (the
judge), and the ex-post sampler (Ghosh et al. 2020). fd_clf is torchmetrics', fed precomputed
classifier outputs, so each image passes the classifier once."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from .latent import nearest_index

CONFIDENT = 0.9


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of (N, F) and (M, F) features; on the judge's, fd_clf:
    NOT comparable with Inception FIDs (other features and scale, 32x32, trained on this data)."""
    precomputed = nn.Identity()
    # Without this width torchmetrics would measure it by passing a random image (global RNG).
    precomputed.num_features = real_features.shape[1]
    metric = FrechetInceptionDistance(feature=precomputed)
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def recognisability(logits: torch.Tensor, classes: list[str]) -> dict:
    """Share of confident (N, classes) logits, mean confidence, shares per class (mode dropping)."""
    confidence, label = logits.softmax(dim=1).max(dim=1)
    counts = torch.bincount(label, minlength=len(classes)).float() / len(label)
    return {
        "recognisable": float((confidence >= CONFIDENT).float().mean()),
        "mean_confidence": float(confidence.mean()),
        "class_histogram": {
            name: round(float(share), 4) for name, share in zip(classes, counts, strict=True)
        },
        "class_min": float(counts.min()),
        "class_max": float(counts.max()),
    }


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature scaling (Guo et al. 2017): the T minimising the NLL of softmax(logits / T). Label
    smoothing caps the judge's confidence (about 0.82 at smoothing 0.2), so unscaled, "confidence
    >= 0.9" would never happen; scaled, a confidence of 0.9 means right about 90% of the time."""
    log_t = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=100)
    logits = logits.double()

    def nll():
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(nll)
    # Outside [0.05, 20] the held-out set is too small or too separable to tell the temperature
    # (the NLL keeps falling as T -> 0), and such a T would push probabilities to exact zeros.
    return min(max(log_t.detach().exp().item(), 0.05), 20.0)


@torch.no_grad()
def relative_nearest_error(images: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean of |x - n|^2 / |m - n|^2 over `images`, n the nearest (N, D) `reference` image, m their
    per-pixel median ("blank"): a copy scores 0, the blank 1, whatever the size or brightness."""
    flat = images.flatten(1).float()
    blank = reference.median(dim=0).values
    nearest = nearest_index(images, reference)
    error = (flat - reference[nearest]).pow(2).sum(1)
    return float((error / (blank - reference[nearest]).pow(2).sum(1).clamp_min(1e-12)).mean())


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute Laplacian of float (B, C, H, W) images in [0, 1]: what blur removes."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    kernel = kernel.expand(images.shape[1], 1, 3, 3).to(images)
    edges = torch.nn.functional.conv2d(images, kernel, groups=images.shape[1])
    return edges.abs().mean().item()


def fit_latent_gmm(
    posterior_means: torch.Tensor, components: int, seed: int, covariance: str = "full"
) -> dict[str, np.ndarray]:
    """A Gaussian mixture fitted to posterior means, as arrays; reg_covar keeps it well posed. In
    float32: half float64's time on 50,000 128-d codes, same bound to 4 digits (docs/benchmarks.md)."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(
        components, covariance_type=covariance, random_state=seed, reg_covar=1e-4, max_iter=200
    )
    gmm.fit(posterior_means.float().numpy())
    return {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}


def sample_gmm(arrays, count: int, seed: int) -> torch.Tensor:
    """(count, latent) float32 draws from `fit_latent_gmm`'s arrays, a component at a time (torch's
    MixtureSameFamily draws every component per sample: 10x the work, 23 s for 10,000 128-d codes)."""
    weights, means, covariances = (
        torch.as_tensor(np.asarray(arrays[key]), dtype=torch.float64)
        for key in ("weights", "means", "covariances")
    )
    generator = torch.Generator().manual_seed(seed)
    component = torch.multinomial(weights, count, replacement=True, generator=generator)
    noise = torch.randn(count, means.shape[1], generator=generator, dtype=torch.float64)
    if covariances.ndim == 2:  # diagonal: (K, latent) variances
        covariances = torch.diag_embed(covariances)
    scales = torch.linalg.cholesky(covariances)  # (K, latent, latent), lower triangular
    codes = torch.empty_like(noise)
    for k, (mean, scale) in enumerate(zip(means, scales, strict=True)):
        chosen = component == k
        codes[chosen] = mean + noise[chosen] @ scale.T
    return codes.float()


def sample_codes(sampler: str, count: int, latent_dim: int, seed: int, gmm=None) -> torch.Tensor:
    """(count, latent_dim) float32 codes from N(0, I) (sampler "prior") or the mixture `gmm`
    ("gmm"; params.yaml's schema admits no other sampler)."""
    if sampler == "prior":
        return torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))
    return sample_gmm(gmm, count, seed)
