"""How much generated images look like CIFAR-10, judged by the project's own classifier.

* `fd_clf`: the Frechet distance between Gaussians fitted to the classifier's penultimate features
  of generated and of real test images. Same formula as FID, different network: it is NOT FID,
  and its values are not comparable with published Inception FIDs (other features, other scale,
  32x32 inputs, a network trained on this very dataset).
* `is_clf`: the Inception-Score analogue exp(E_x KL(p(y|x) || p(y))) from the classifier's
  predictions: between 1 (uninformative or collapsed) and 10 (confident and balanced).
* `recognisable`: the share of images the classifier labels with confidence >= 0.9, plus the
  mean top-1 confidence and the class histogram (mode dropping shows there). Probabilities are
  temperature-scaled (`fit_temperature`) so that confidence means what it says.

The statistics are torchmetrics' maintained implementations; they are fed precomputed classifier
outputs through an identity "feature extractor", so each image passes the classifier once.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore

CONFIDENT = 0.9


class _Precomputed(nn.Module):
    """The identity, sized for torchmetrics: features (or logits) are computed beforehand."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def frechet_distance(real_features: torch.Tensor, fake_features: torch.Tensor) -> float:
    """Frechet distance between Gaussian fits of two feature sets, (N, F) and (M, F)."""
    metric = FrechetInceptionDistance(feature=_Precomputed(real_features.shape[1]))
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def classifier_score(logits: torch.Tensor, splits: int = 10) -> float:
    """The Inception-Score analogue from (N, classes) logits; the mean over `splits` parts."""
    metric = InceptionScore(feature=_Precomputed(logits.shape[1]), splits=splits)
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]):  # compute() shuffles with the global RNG
        torch.manual_seed(0)
        mean, _ = metric.compute()
    return float(mean)


def recognisability(logits: torch.Tensor, classes: list[str]) -> dict:
    probs = logits.softmax(dim=1)
    confidence, label = probs.max(dim=1)
    counts = torch.bincount(label, minlength=len(classes)).float() / len(label)
    return {"recognisable": float((confidence >= CONFIDENT).float().mean()),
            "mean_confidence": float(confidence.mean()),
            "class_histogram": {name: round(float(share), 4) for name, share in zip(classes, counts)}}


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
    return float(log_t.exp())


def quality_row(real_features: torch.Tensor, features: torch.Tensor, logits: torch.Tensor,
                classes: list[str], temperature: float = 1.0) -> dict:
    """fd_clf from the features; is_clf and recognisability from the temperature-scaled logits."""
    scaled = logits / temperature
    return {"fd_clf": frechet_distance(real_features, features), "is_clf": classifier_score(scaled),
            **recognisability(scaled, classes)}


def fit_latent_gmm(posterior_means: torch.Tensor, components: int, seed: int) -> dict[str, np.ndarray]:
    """The ex-post density estimate (Ghosh et al. 2020): a full-covariance Gaussian mixture fitted
    to the training set's posterior means, as arrays to save with np.savez."""
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(components, covariance_type="full", random_state=seed, reg_covar=1e-4, max_iter=200)
    gmm.fit(posterior_means.double().numpy())
    return {"weights": gmm.weights_, "means": gmm.means_, "covariances": gmm.covariances_}


def gmm_distribution(arrays) -> torch.distributions.Distribution:
    """The saved mixture as a torch distribution (sample(), log_prob())."""
    weights = torch.as_tensor(np.asarray(arrays["weights"]), dtype=torch.float64)
    means = torch.as_tensor(np.asarray(arrays["means"]), dtype=torch.float64)
    covariances = torch.as_tensor(np.asarray(arrays["covariances"]), dtype=torch.float64)
    return torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(probs=weights),
        torch.distributions.MultivariateNormal(means, covariance_matrix=covariances))


def sample_codes(sampler: str, count: int, latent_dim: int, seed: int, gmm=None) -> torch.Tensor:
    """(count, latent_dim) float32 codes from the prior N(0, I) or the fitted mixture."""
    generator = torch.Generator().manual_seed(seed)
    if sampler == "prior":
        return torch.randn(count, latent_dim, generator=generator)
    if sampler == "gmm":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return gmm_distribution(gmm).sample((count,)).float()
    raise ValueError(f"unknown sampler {sampler!r}; use prior or gmm")
