"""reports/theory.md: the four theory questions answered with the beta study's numbers and figures
(templates/theory.md.j2); each comparison word is chosen from the numbers, so it stays true."""

from __future__ import annotations

from . import templates
from .sweep import differs

# The measures on which the autoencoder is placed against every VAE.
PLACED = ("prior_relative_error", "midpoint_relative_error", "recon_mse", "path_max_over_mean")


def theory_markdown(study: dict) -> str:
    seeds, ae = study["shapes_spread"], study["autoencoder_spread"]
    first, last = min(study["shapes"], key=float), max(study["shapes"], key=float)
    side = {}  # per key: the autoencoder's seeds clearly below (-1) or above (1) every beta's, or 0
    for key in PLACED:
        directions = {differs(vae[key], ae[key], key) for vae in seeds.values()}
        side[key] = directions.pop() if len(directions) == 1 else 0
    return templates.render(
        "theory.md.j2",
        study=study,
        first={"beta": first, "spread": seeds[first]},
        last={"beta": last, "spread": seeds[last]},
        side=side,
        figures={key: f"`{path}`" for key, path in study["figures"].items()},
    )
