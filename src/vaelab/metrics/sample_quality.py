"""How much generated images look like the data, judged by the project's own classifier (the
judge): the Frechet distance of its features, recognisability, precision/recall/density/coverage,
the nearest real image's error relative to a blank image's, sharpness; and the ex-post sampler,
which draws codes instead of from the prior from a Gaussian mixture fitted to the training codes
(`fit_latent_gmm`, Ghosh et al. 2020).

The statistics are torchmetrics' and prdc's maintained implementations, fed precomputed classifier
outputs (models.classify_batches; torchmetrics through an identity "feature extractor"), so each
image passes the classifier once.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from ..config import SAMPLERS
from ..errors import VaelabError
from .latent import nearest_index

CONFIDENT = 0.9
TEMPERATURE_RANGE = (0.05, 20.0)
NEAREST_K = 3  # neighbours that define a manifold's radius; Kynkaanniemi et al. found k = 3 robust


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets, (N, F) and (M, F). On the
    judge's features this is fd_clf: same formula as FID, different network, so it is NOT FID and
    not comparable with published Inception FIDs (other features, other scale, 32x32 inputs, a
    network trained on this very dataset)."""
    precomputed = nn.Identity()
    # Without this width torchmetrics would measure it by passing a random image (global RNG).
    precomputed.num_features = real_features.shape[1]
    metric = FrechetInceptionDistance(feature=precomputed)
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def precision_recall(
    real_features: torch.Tensor, fake_features: torch.Tensor, nearest_k: int = NEAREST_K
) -> dict[str, float]:
    """Precision and recall (Kynkaanniemi et al. 2019), density and coverage (Naeem et al. 2020,
    their outlier-robust versions) of (M, F) generated features against (N, F) real ones: the share
    of generated images inside the k-NN manifold of the real ones (realism) and the reverse
    (variety), which split fd_clf's single number into its two halves. Each in [0, 1] (density can
    exceed 1). The larger set is cut to the smaller's size (its first rows): a k-NN radius
    shrinks as its set grows, so unequal sets would bias precision up and recall down
    (Kynkaanniemi et al. use equal sizes)."""
    from prdc import compute_prdc

    count = min(len(real_features), len(fake_features))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints the two set sizes
        scores = compute_prdc(
            real_features[:count].float().numpy(), fake_features[:count].float().numpy(), nearest_k
        )
    return {name: float(value) for name, value in scores.items()}


def recognisability(logits: torch.Tensor, classes: list[str]) -> dict:
    """Share of (N, classes) logits with top-1 probability >= CONFIDENT, mean top-1 probability,
    and the share of images per predicted class (mode dropping shows there)."""
    probs = logits.softmax(dim=1)
    confidence, label = probs.max(dim=1)
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
    """Temperature scaling (Guo et al. 2017): the T > 0 minimising the NLL of softmax(logits / T) on
    labelled held-out images. The judge trains with label smoothing, which caps its confidence
    (about 0.82 at smoothing 0.2), so unscaled, "confidence >= 0.9" would never happen, not even for
    real images; after scaling, a confidence of 0.9 means right about 90% of the time."""
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
    return min(max(log_t.detach().exp().item(), TEMPERATURE_RANGE[0]), TEMPERATURE_RANGE[1])


def quality_row(
    real_features: torch.Tensor,
    features: torch.Tensor,
    logits: torch.Tensor,
    classes: list[str],
    temperature: float = 1.0,
    nearest_k: int = NEAREST_K,
) -> dict:
    """fd_clf, precision and recall from the features; recognisability from the temperature-scaled
    logits."""
    return {
        "fd_clf": frechet_distance(real_features, features),
        **precision_recall(real_features, features, nearest_k),
        **recognisability(logits / temperature, classes),
    }


@torch.no_grad()
def relative_nearest_error(images: torch.Tensor, reference: torch.Tensor) -> float:
    """How much of a real image each generated one gets right, where a blank image cannot win:
    the mean over (B, C, H, W) `images` of |x - n|^2 / |m - n|^2, with n the nearest of the (N, D)
    flat `reference` images and m their per-pixel median (the "blank" image: black for shapes). A
    copy of a real image scores 0, the blank image 1, whatever the images' size or brightness."""
    flat = images.flatten(1).float()
    blank = reference.median(dim=0).values
    nearest = nearest_index(images, reference)
    error = (flat - reference[nearest]).pow(2).sum(1)
    return float((error / (blank - reference[nearest]).pow(2).sum(1).clamp_min(1e-12)).mean())


def sharpness(images: torch.Tensor) -> float:
    """Mean absolute Laplacian of float (B, C, H, W) images in [0, 1]: the high-frequency energy
    that blur removes. Reported relative to real test images, so 1.0 means as sharp as real."""
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
    kernel = kernel.expand(images.shape[1], 1, 3, 3).to(images)
    edges = torch.nn.functional.conv2d(images, kernel, groups=images.shape[1])
    return edges.abs().mean().item()


def fit_latent_gmm(
    posterior_means: torch.Tensor, components: int, seed: int, covariance: str = "full"
) -> dict[str, np.ndarray]:
    """The ex-post density estimate (Ghosh et al. 2020): a full-covariance Gaussian mixture fitted
    to the training set's posterior means, as arrays to save with store.write_npz. Fitted in
    float32: on 50,000 codes of 128 dims it takes half the time of float64 and reaches the same
    lower bound to four digits (measured, docs/benchmarks.md); reg_covar keeps it well posed."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(
        components, covariance_type=covariance, random_state=seed, reg_covar=1e-4, max_iter=200
    )
    gmm.fit(posterior_means.float().numpy())
    return {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}


def sample_gmm(arrays, count: int, seed: int, temperature: float = 1.0) -> torch.Tensor:
    """(count, latent) float32 draws from a saved mixture (`fit_latent_gmm`'s arrays): a component
    per draw by its weight, then its mean plus its Cholesky factor times tau * N(0, I) noise, one
    component at a time (torch.distributions' MixtureSameFamily draws from every component for
    every sample: 10x the work, 23 s for 10,000 codes of 128 dims)."""
    weights, means, covariances = (
        torch.as_tensor(np.asarray(arrays[key]), dtype=torch.float64)
        for key in ("weights", "means", "covariances")
    )
    generator = torch.Generator().manual_seed(seed)
    component = torch.multinomial(weights, count, replacement=True, generator=generator)
    noise = temperature * torch.randn(
        count, means.shape[1], generator=generator, dtype=torch.float64
    )
    if covariances.ndim == 2:  # diagonal: (K, latent) variances
        covariances = torch.diag_embed(covariances)
    scales = torch.linalg.cholesky(covariances)  # (K, latent, latent), lower triangular
    codes = torch.empty_like(noise)
    for k, (mean, scale) in enumerate(zip(means, scales, strict=True)):
        chosen = component == k
        codes[chosen] = mean + noise[chosen] @ scale.T
    return codes.float()


# The samplers a temperature tau scales (the prior's N(0, tau^2 I), each mixture component's
# covariance by tau^2): below 1 the draws stay nearer the dense middle of what they model.
TEMPERED = ("prior", "gmm")


def sampler_name(sampler: str, temperature: float = 1.0) -> str:
    """The row name of a sampler: `prior` is N(0, I), `prior_t0.8` is N(0, 0.8^2 I), `gmm_t0.8`
    the mixture with every covariance times 0.8^2."""
    return f"{sampler}_t{temperature:g}" if sampler in TEMPERED and temperature != 1.0 else sampler


def sample_codes(
    sampler: str,
    count: int,
    latent_dim: int,
    seed: int,
    gmm=None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """(count, latent_dim) float32 codes from the prior N(0, tau^2 I) (tau = `temperature`: below 1
    the draws stay nearer the origin, where the aggregate posterior is dense), the fitted mixture
    (its covariances times tau^2)."""
    prior = torch.randn(count, latent_dim, generator=torch.Generator().manual_seed(seed))
    if sampler == "prior":
        return prior * temperature
    if sampler == "gmm":
        if gmm is None:
            raise VaelabError("the gmm sampler needs the fitted mixture; pass gmm=")
        return sample_gmm(gmm, count, seed, temperature)
    raise VaelabError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
