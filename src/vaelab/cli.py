"""What every pipeline entry script shares: params in, one-line errors out."""

from __future__ import annotations

import sys

from .errors import VaelabError
from .params import load_params


def run_stage(stage) -> None:
    """Call `stage(params)`; a VaelabError or an interrupt ends the process with one clear line."""
    try:
        stage(load_params("params.yaml"))
    except VaelabError as e:
        sys.exit(f"error: {e}")
    except KeyboardInterrupt:
        sys.exit("interrupted: rerun the same command (or dvc repro) to resume from the last checkpoint")
