"""Disentanglement scores of a latent code against known factors, and the code's total correlation.

* MIG, the mutual information gap (Chen et al. 2018): per factor, the gap between the mutual
  information of its two most informative latent dims, over the factor's entropy, averaged over
  factors (1 = every factor lives in exactly one dim). MI is estimated as disentanglement_lib does:
  each dim cut into equal-width bins, then scikit-learn's `mutual_info_score`.
* DCI (Eastwood & Williams 2018): a classifier predicts each factor from the code; its feature
  importances form a (latent, factor) matrix, read per dim (disentanglement) and per factor
  (completeness); informativeness is its test accuracy. The classifier is a random forest: about a
  second per factor on thousands of codes, it copes with non-linear and non-monotone encodings (a
  rotation spread over two dims) and its importances need no tuning. Lasso would miss non-linear
  codes; GradientBoostingClassifier (disentanglement_lib's) is several times slower here.
* The FactorVAE score (Kim & Mnih 2018): the accuracy of a majority-vote classifier dim -> factor
  on votes naming the dim that varies least while one factor is held fixed.
* Gaussian total correlation: the TC of the Gaussian with the aggregate posterior's covariance C,
  0.5 * (sum_j log C_jj - log det C); it sees linear correlation only. (A Monte Carlo estimate of
  the true TC over N sharp posteriors measures mostly how sparse that N-point mixture is: ~12 nats
  for 10 truly independent dims at N = 2000, so it is not reported.)
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.stats import entropy
from sklearn.ensemble import RandomForestClassifier
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


def _concentration(columns: np.ndarray, total: float) -> float:
    """1 - entropy of each column's distribution over the rows (base: the number of rows, so "even
    over all rows" scores 0), averaged with each column's share of `total` as its weight: a dim
    that matters for one factor only scores 1, one spread evenly over all factors 0."""
    weights = columns.sum(axis=0)
    used = weights > 0
    # scipy's entropy normalises each column to a distribution; a single row (entropy base 1 is
    # undefined) is trivially concentrated.
    scores = 1.0 - entropy(columns[:, used], base=len(columns)) if len(columns) > 1 else 1.0
    return float((scores * weights[used] / total).sum())


def dci_from_importances(importances: np.ndarray) -> dict:
    """Disentanglement and completeness of a (latent, factor) importance matrix."""
    total = importances.sum()
    if total <= 0:
        return {"disentanglement": 0.0, "completeness": 0.0}
    return {
        "disentanglement": _concentration(importances.T, total),  # each dim over the factors
        "completeness": _concentration(importances, total),  # each factor over the dims
    }


def dci(
    train_codes: np.ndarray,
    train_factors: np.ndarray,
    test_codes: np.ndarray,
    test_factors: np.ndarray,
    trees: int = 50,
    max_depth: int = 8,
    seed: int = 0,
) -> dict:
    """DCI disentanglement, completeness, informativeness (mean test accuracy of the forests, one
    per factor), each factor's accuracy, and the (latent, factor) importance matrix."""
    _check(train_codes, train_factors)
    _check(test_codes, test_factors)
    importances, accuracies = [], []
    for k in range(train_factors.shape[1]):
        # Every split considers every dim (max_features=None): with a random subset a dim wins
        # splits only because the informative one was not offered, which smears importance over
        # useless dims (a code copying the factors then scores 0.79 instead of 1). n_jobs=1:
        # deterministic and light on a shared CPU.
        forest = RandomForestClassifier(
            n_estimators=trees, max_depth=max_depth, max_features=None, random_state=seed, n_jobs=1
        )
        forest.fit(train_codes, train_factors[:, k])
        importances.append(forest.feature_importances_)
        accuracies.append(float(forest.score(test_codes, test_factors[:, k])))
    importances = np.stack(importances, axis=1)
    return {
        **dci_from_importances(importances),
        "informativeness": float(np.mean(accuracies)),
        "accuracy_per_factor": accuracies,
        "importances": importances.tolist(),
    }


def factor_vae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    votes: int = 800,
    batch: int = 64,
    seed: int = 0,
    collapsed_below: float = 0.05,
) -> dict:
    """The FactorVAE score of (N, latent) codes against (N, factors) factor values, with the number
    of dims that took part. Each dim is scaled by its spread over the data; a vote fixes one factor
    at a random value, takes `batch` images sharing it and names the dim whose scaled values vary
    least; the classifier is fitted on half of the votes and scored on the other half (1 = every
    factor owns a dim, about 1/K = chance). A dim whose spread is below `collapsed_below` carries
    nothing and would always "vary least", so it does not vote (as in the paper)."""
    _check(codes, factors)
    spread = codes.std(axis=0)
    kept = spread > collapsed_below
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


def factor_dims(
    normalised_mi: np.ndarray, factor_names: list[str], floor: float = 0.1
) -> dict[str, list]:
    """Per factor, the latent dims carrying at least `floor` of its entropy, most informative first:
    {factor: [[dim, normalised MI], ...]} (empty when no dim reaches the floor)."""
    out = {}
    for name, column in zip(factor_names, np.asarray(normalised_mi).T, strict=True):
        order = np.argsort(-column)
        out[name] = [[int(j), round(float(column[j]), 4)] for j in order if column[j] >= floor]
    return out


def best_factor_per_dim(normalised_mi: np.ndarray, factor_names: list[str]) -> list[dict]:
    """For each latent dim, the factor it shares the most (normalised) information with."""
    return [
        {"factor": factor_names[int(row.argmax())], "normalised_mi": float(row.max())}
        for row in np.asarray(normalised_mi)
    ]


def gaussian_total_correlation(mu: torch.Tensor, logvar: torch.Tensor | None = None) -> float:
    """Gaussian TC in nats of the aggregate posterior of N codes: its covariance is the covariance
    of the means plus the mean posterior variance (none for a deterministic code, logvar None)."""
    covariance = torch.cov(mu.double().cpu().T)
    if logvar is not None:
        covariance = covariance + torch.diag(logvar.double().cpu().exp().mean(dim=0))
    # A dim that never varies is independent of the rest and adds nothing; leaving it in would
    # make the determinant zero.
    varying = covariance.diagonal() > 1e-12
    covariance = covariance[varying][:, varying]
    sign, log_det = torch.linalg.slogdet(covariance)
    if sign <= 0:
        raise VaelabError(
            "the codes' covariance is singular (some dims are exact linear combinations of "
            "others), so the Gaussian total correlation is infinite; evaluate on more images"
        )
    return float(0.5 * (covariance.diagonal().log().sum() - log_det))
