"""reports/theory.md: the four theory questions, each answered with a number or figure this
pipeline produced. Written by the `beta_study` stage (`betas.beta_study`) from the study it also
saves as reports/metrics_beta.json, whose "figures" entry says where its figures are (relative to
reports/). Every comparison word ("farther", "no clear difference") is chosen from the numbers, so
a rerun that changes them cannot leave a false sentence behind. The words are in
templates/theory.md.j2; this module picks what they compare."""

from __future__ import annotations

from . import templates
from .sweep import differs

# The measures on which the autoencoder is placed against every VAE.
PLACED = ("prior_relative_error", "midpoint_relative_error", "recon_mse", "path_max_over_mean")


def autoencoder_side(ae: dict, vaes: list[dict], key: str) -> int:
    """Where the autoencoder's seeds lie against every beta's (`sweep.spread` entries): -1 clearly
    below all, 1 clearly above all, 0 neither (`sweep.differs`)."""
    directions = {differs(vae[key], ae[key], key) for vae in vaes}
    return directions.pop() if len(directions) == 1 else 0


def theory_markdown(study: dict) -> str:
    seeds = study["shapes_spread"]
    first, last = min(study["shapes"], key=float), max(study["shapes"], key=float)
    side = {
        key: autoencoder_side(study["autoencoder_spread"], list(seeds.values()), key)
        for key in PLACED
    }
    return templates.render(
        "theory.md.j2",
        study=study,
        first={"beta": first, "spread": seeds[first]},
        last={"beta": last, "spread": seeds[last]},
        side=side,
        figures={key: f"`{path}`" for key, path in study["figures"].items()},
    )
