"""A sweep over seeds: every number's mean and spread over the seeds (`spread`), the per-factor
scores, and the one rule that calls a difference between two groups an effect (`differs`): the
means differ by at least `CLEAR_CHANGE` of the first (scores in [0, 1]: by at least `CLEAR_SCORE`)
and the seeds' ranges do not overlap. With three seeds that is strict on purpose: a difference a
fourth seed could erase is not reported as a finding.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

CLEAR_CHANGE = 0.05  # relative differences below 5% are "no clear difference" (in every text)
CLEAR_SCORE = 0.05  # scores in [0, 1] (MIG, FactorVAE): smaller absolute differences are noise
SCORES = ("mig", "factor_vae")
# The numbers of a shapes model summarised over seeds (`study_row`'s names): a sweep's DVC metrics
# (their mean and std), the beta study's rows and spreads, the pilot's (each eval JSON keeps the rest).
SPREAD_KEYS = (
    "recon_mse",
    "kl",
    "active_units",
    *SCORES,
    "gaussian_tc",
    "prior_relative_error",
    "midpoint_relative_error",
    "path_mean_step",
    "path_max_over_mean",
    "neg_elbo",
    "bpd",
    "sample_sharpness",
)
FACTOR_KEYS = ("mig", "carrier_mi")


def study_row(metrics: dict) -> dict:
    """A shapes run's evaluation as the study names it: every test-set number without its "test_"
    (the eval JSON's test_recon_mse is the study's recon_mse, averaged over seeds there)."""
    return {key.removeprefix("test_"): value for key, value in metrics.items()}


def spread(rows: list[dict], keys: tuple[str, ...] = SPREAD_KEYS) -> dict[str, dict]:
    """Per key present in the rows (one per seed): mean, sample standard deviation (0 for one
    seed), min, max and the values themselves, in the rows' order."""
    table = pd.DataFrame(rows)
    out = {}
    for key in keys:
        values = table[key].dropna().astype(float) if key in table else pd.Series()
        if len(values):
            out[key] = {
                "mean": float(values.mean()),
                "std": float(values.std()) if len(values) > 1 else 0.0,
                "min": float(values.min()),
                "max": float(values.max()),
                "values": values.tolist(),
            }
    return out


def mean_row(rows: list[dict], runs: list[str], summary: dict[str, dict]) -> dict:
    """The first seed's row with each key of `summary` (the rows' `spread`) as its mean, and its
    runs; per-dim lists stay the first seed's (dims of different seeds are not the same dims)."""
    return {
        **rows[0],
        **{key: stats["mean"] for key, stats in summary.items()},
        "seeds": len(rows),
        "runs": runs,
    }


def direction(
    before: float, after: float, score: bool = False, tolerance: float = CLEAR_CHANGE
) -> int:
    """1 if `after` is clearly above `before`, -1 if clearly below, 0 for no clear change: a
    relative change of at least `tolerance`, or for a score in [0, 1] (where a relative change
    says little near 0) an absolute change of at least CLEAR_SCORE."""
    change = abs(after - before)
    big = change >= CLEAR_SCORE if score else before != 0 and change / abs(before) >= tolerance
    if not big:
        return 0
    return 1 if after > before else -1


def differs(before: dict, after: dict, key: str) -> int:
    """`direction` of two `spread` entries' means, 0 unless the seeds' ranges are apart too."""
    apart = before["max"] < after["min"] or after["max"] < before["min"]
    return direction(before["mean"], after["mean"], key in SCORES) if apart else 0


def mean_pm(stats: dict, fmt: str = "{:.3g}") -> str:
    """'0.0123±0.0004' (mean ± sample standard deviation over seeds; one word in a word count)."""
    return f"{fmt.format(stats['mean'])}±{fmt.format(stats['std'])}"


def last_fifth_change(values: list[float]) -> float:
    """The relative change of a per-epoch curve over its last fifth of epochs (at least one): how
    far from flat a run stopped (-0.1 = still falling 10%)."""
    before = values[-1 - max(1, math.ceil(len(values) / 5))] if len(values) > 1 else values[-1]
    return (values[-1] - before) / before


def factor_spread(evals: list[dict]) -> dict[str, dict]:
    """Per factor, `spread` over the seeds' evaluations of its MIG and of `carrier_mi`, the
    normalised MI (share of the factor's entropy) of the latent that carries most of it, whose
    index per seed is `carrier`."""
    out = {}
    for k, name in enumerate(evals[0]["mig_per_factor"]):
        rows, carriers = [], []
        for m in evals:
            mi = np.asarray(m["normalised_mi"])[:, k]  # (latent,)
            rows.append({"mig": m["mig_per_factor"][name], "carrier_mi": float(mi.max())})
            carriers.append(int(mi.argmax()))
        out[name] = {**spread(rows, FACTOR_KEYS), "carrier": carriers}
    return out
