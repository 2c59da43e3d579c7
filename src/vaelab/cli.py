"""What every pipeline script shares: params checked once, then one clear line for every failure."""

import argparse
import errno
import sys

from .config import load_params
from .errors import VaelabError


def run_stage(stage, *args) -> None:
    """`stage(params, *args)`; a known failure ends the process with one line and exit status 1."""
    try:
        stage(load_params("params.yaml"), *args)
    except VaelabError as e:
        sys.exit(f"error: {e}")
    except OSError as e:
        if e.errno != errno.ENOSPC:
            raise
        sys.exit(
            f"error: disk full ({e.filename or 'writing'}); free space and rerun (dvc repro resumes)"
        )
    except KeyboardInterrupt:
        sys.exit(
            "interrupted: rerun the same command (or dvc repro) to resume from the last checkpoint"
        )


def name_parser(doc: str, what: str) -> argparse.ArgumentParser:
    """An argument parser whose one positional argument is a name from params.yaml."""
    parser = argparse.ArgumentParser(description=doc.strip().splitlines()[0])
    parser.add_argument("name", help=what)
    return parser
