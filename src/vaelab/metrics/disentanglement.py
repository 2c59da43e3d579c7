"""Disentanglement scores of a latent code against known factors, and the code's total correlation.

* MIG (Chen et al. 2018): per factor, the gap between the mutual information of its two most
  informative dims over the factor's entropy, averaged over factors (1 = each factor in one dim).
  MI as disentanglement_lib estimates it: equal-width bins, then scikit-learn's `mutual_info_score`.
* FactorVAE score (Kim & Mnih 2018): the accuracy of a majority vote dim -> factor on votes naming
  the dim that varies least while one factor is held fixed.
* Gaussian total correlation of the aggregate posterior's covariance C: 0.5 * (sum_j log C_jj -
  log det C), linear correlation only. (A Monte Carlo estimate of the true TC over N sharp
  posteriors mostly measures how sparse that N-point mixture is: ~12 nats for 10 independent dims
  at N = 2000, so it is not reported.)
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score

from ..errors import VaelabError


def _check(codes: np.ndarray, factors: np.ndarray) -> None:
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise VaelabError(
            f"codes {codes.shape} and factors {factors.shape} must be (N, latent) "
            "and (N, factors) for the same N"
        )
    if codes.shape[1] < 2:
        raise VaelabError("the mutual information gap needs a code of at least 2 dimensions")


def mig(codes: np.ndarray, factors: np.ndarray, bins: int = 20) -> dict:
    """MIG, per-factor gaps, and the normalised mutual information I(z_j; v_k) / H(v_k)."""
    _check(codes, factors)
    entropies = np.array(
        [entropy(np.unique(factor, return_counts=True)[1]) for factor in factors.T]
    )
    if np.any(entropies == 0):
        raise VaelabError(
            "a factor takes a single value in these images, so its information is "
            "undefined; evaluate on images where every factor varies"
        )
    mutual_info = np.zeros((codes.shape[1], factors.shape[1]))  # (latent, factor), in nats
    for j, dim in enumerate(codes.T):
        binned = np.digitize(dim, np.histogram_bin_edges(dim, bins=bins)[1:-1])  # equal widths
        mutual_info[j] = [mutual_info_score(factor, binned) for factor in factors.T]
    normalised = mutual_info / entropies
    top_two = np.sort(normalised, axis=0)[-2:]
    gaps = top_two[1] - top_two[0]
    return {
        "mig": float(gaps.mean()),
        "per_factor": gaps.tolist(),
        "normalised_mi": normalised.tolist(),
    }


def factor_vae_score(codes: np.ndarray, factors: np.ndarray, seed: int = 0) -> dict:
    """The FactorVAE score of (N, latent) codes against (N, factors) values, and the voting dims.
    Dims scaled by their spread; each of 800 votes fixes one factor at a random value and names the
    dim varying least over 64 images sharing it; fitted on half the votes, scored on the rest
    (1 = every factor owns a dim, 1/K = chance). A dim spread below 0.05 would always "vary least",
    so it does not vote (as in the paper)."""
    _check(codes, factors)
    votes, batch = 800, 64
    spread = codes.std(axis=0)
    kept = spread > 0.05
    if not kept.any():
        return {"factor_vae": 0.0, "voting_dims": 0, "votes": votes}
    scaled = codes[:, kept] / spread[kept]
    rng = np.random.default_rng(seed)
    winners = np.empty(votes, dtype=np.int64)
    fixed = rng.integers(factors.shape[1], size=votes)
    for v, k in enumerate(fixed):
        value = factors[rng.integers(len(factors)), k]
        pool = np.flatnonzero(factors[:, k] == value)
        pick = rng.choice(pool, size=batch, replace=len(pool) < batch)
        winners[v] = scaled[pick].var(axis=0).argmin()
    half = votes // 2
    counts = np.zeros((kept.sum(), factors.shape[1]))
    np.add.at(counts, (winners[:half], fixed[:half]), 1)
    majority = counts.argmax(axis=1)  # each dim's factor by the first half's votes
    accuracy = float((majority[winners[half:]] == fixed[half:]).mean())
    return {"factor_vae": accuracy, "voting_dims": int(kept.sum()), "votes": votes}


def best_factor_per_dim(normalised_mi: np.ndarray, factor_names: list[str]) -> list[dict]:
    """For each latent dim, the factor it shares the most (normalised) information with."""
    return [
        {"factor": factor_names[int(row.argmax())], "normalised_mi": float(row.max())}
        for row in np.asarray(normalised_mi)
    ]


def gaussian_total_correlation(mu: torch.Tensor, logvar: torch.Tensor | None = None) -> float:
    """Gaussian TC in nats of N codes' aggregate posterior: the means' covariance plus the mean
    posterior variance (none for a deterministic code, logvar None)."""
    covariance = torch.cov(mu.double().cpu().T)
    if logvar is not None:
        covariance = covariance + torch.diag(logvar.double().cpu().exp().mean(dim=0))
    # A dim that never varies adds nothing; left in, it would make the determinant zero.
    varying = covariance.diagonal() > 1e-12
    covariance = covariance[varying][:, varying]
    sign, log_det = torch.linalg.slogdet(covariance)
    if sign <= 0:
        raise VaelabError(
            "the codes' covariance is singular (some dims are exact linear combinations of "
            "others), so the Gaussian total correlation is infinite; evaluate on more images"
        )
    return float(0.5 * (covariance.diagonal().log().sum() - log_det))
