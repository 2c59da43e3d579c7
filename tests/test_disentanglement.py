"""MIG, the FactorVAE score and Gaussian total correlation on codes built from a known factor grid."""

import itertools
import math

import numpy as np
import pytest
import torch

from vaelab.errors import VaelabError
from vaelab.metrics.disentanglement import (
    best_factor_per_dim,
    factor_vae_score,
    gaussian_total_correlation,
    mig,
)

# Levels per factor, as the shapes dataset's defaults: 3 shapes, 4 hues, 3 scales, 4 rotations,
# 5 x and 5 y positions.
LEVELS = {"shape": 3, "hue": 4, "scale": 3, "rotation": 4, "x": 5, "y": 5}
NAMES = list(LEVELS)


@pytest.fixture(scope="module")
def factors():
    """Every combination of level indices (3,600), shuffled, split 3,000 / 600."""
    grid = np.array(list(itertools.product(*(range(n) for n in LEVELS.values()))), dtype=np.int64)
    grid = grid[np.random.default_rng(0).permutation(len(grid))]
    return grid[:3000], grid[3000:]


ORDER = [3, 7, 0, 5, 9, 1, 2, 8, 4, 6]  # where copying() puts factor k: column ORDER.index(k)


def copying(factors, rng, extra=4):
    """Each factor in its own dim (scaled, a little noise, in a shuffled order), plus unused
    noise dims."""
    scale = rng.uniform(0.5, 2.0, factors.shape[1])  # drawn first: the same for a fresh rng
    code = factors * scale + 0.05 * rng.standard_normal(factors.shape)
    return np.concatenate([code, rng.standard_normal((len(factors), extra))], axis=1)[:, ORDER]


def test_mig_is_one_for_a_code_that_copies_the_factors_and_zero_for_noise(factors):
    """And the dim carrying each factor is found."""
    train, _ = factors
    rng = np.random.default_rng(1)
    copied = mig(copying(train, rng), train)
    assert copied["mig"] > 0.95
    assert mig(rng.standard_normal((len(train), 10)), train)["mig"] < 0.03
    carriers = np.asarray(copied["normalised_mi"]).argmax(axis=0)  # per factor
    assert carriers.tolist() == [ORDER.index(k) for k in range(len(NAMES))]
    best = best_factor_per_dim(copied["normalised_mi"], NAMES)
    assert best[ORDER.index(4)]["factor"] == "x" and best[ORDER.index(0)]["factor"] == "shape"


def test_mig_drops_when_one_dim_carries_two_factors_or_two_dims_carry_one(factors):
    train, _ = factors
    rng = np.random.default_rng(2)
    code = copying(train, rng)
    tangled = np.concatenate(
        [train[:, :1] + 10 * train[:, 1:2], train[:, 1:2], train[:, 2:]], axis=1
    ).astype(float)
    copy_of_shape = train[:, :1] + 0.01 * rng.standard_normal((len(train), 1))
    duplicated = np.concatenate([train, copy_of_shape], axis=1)
    assert mig(tangled, train)["mig"] < mig(code, train)["mig"] - 0.1
    result = mig(duplicated.astype(float), train)
    assert result["per_factor"][0] < 0.2 and min(result["per_factor"][1:]) > 0.95


def test_codes_and_factors_must_match():
    with pytest.raises(VaelabError, match="same N"):
        mig(np.zeros((5, 3)), np.zeros((4, 2), dtype=int))
    with pytest.raises(VaelabError, match="single value"):
        mig(np.random.default_rng(0).standard_normal((10, 3)), np.zeros((10, 1), dtype=int))
    with pytest.raises(VaelabError, match="at least 2 dimensions"):
        mig(np.zeros((10, 1)), np.arange(10).reshape(10, 1))


def test_gaussian_total_correlation_is_zero_for_independent_dims_and_exact_for_a_pair():
    generator = torch.Generator().manual_seed(0)
    independent = torch.randn(20000, 6, generator=generator)
    assert gaussian_total_correlation(independent) < 0.005
    rho = 0.8
    a = torch.randn(20000, generator=generator)
    b = rho * a + math.sqrt(1 - rho**2) * torch.randn(20000, generator=generator)
    pair = torch.stack([a, b], dim=1)
    expected = -0.5 * math.log(1 - rho**2)
    assert gaussian_total_correlation(pair) == pytest.approx(expected, rel=0.05)
    # Posterior noise adds independent variance, which lowers the correlation of the aggregate.
    noisy = gaussian_total_correlation(pair, torch.zeros_like(pair))  # logvar 0: variance 1
    assert noisy == pytest.approx(-0.5 * math.log(1 - (rho / 2) ** 2), rel=0.1)
    # A dim that never varies is independent of the rest and adds nothing.
    constant = torch.cat([pair, torch.zeros(20000, 1)], dim=1)
    assert gaussian_total_correlation(constant) == pytest.approx(gaussian_total_correlation(pair))
    with pytest.raises(VaelabError, match="singular"):
        gaussian_total_correlation(torch.cat([pair, pair[:, :1]], dim=1))  # a dim twice


def test_factor_vae_score_separates_an_axis_aligned_code_from_a_rotated_one():
    rng = np.random.default_rng(0)
    factors = np.stack([rng.integers(0, n, 3000) for n in (3, 6, 4, 6)], axis=1)
    scaled = (factors - factors.mean(0)) / factors.std(0)
    aligned = np.concatenate(
        [scaled + 0.05 * rng.normal(size=scaled.shape), np.zeros((3000, 2))], 1
    )
    rotation, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    rotated = aligned @ rotation
    noise = rng.normal(size=(3000, 6))
    good, mixed, chance = (
        factor_vae_score(c, factors)["factor_vae"] for c in (aligned, rotated, noise)
    )
    # A rotation keeps most votes (each factor still has the dim loading most on it: the score
    # is lenient to rotations, unlike MIG), but not all; noise is near chance (1/4).
    assert good > 0.95 and mixed < good - 0.1 and chance < 0.4
    assert factor_vae_score(aligned, factors)["voting_dims"] == 4  # the two zero dims never vote
    assert factor_vae_score(aligned, factors, seed=1)["factor_vae"] > 0.95  # not one lucky seed
