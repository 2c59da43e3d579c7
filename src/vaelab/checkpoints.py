"""Models on disk: a `state_dict` plus a JSON config, never a pickled object.

Everything here is read back with `torch.load(..., weights_only=True)`, which refuses arbitrary
pickled code, and written through a temporary file and a rename, so an interrupted write never
replaces a good file with half of a new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch

from .errors import VaelabError
from .models import VAE, build_model

WEIGHTS = "model.pt"
CONFIG = "config.json"
TRAINING_STATE = "checkpoint.pt"


def _atomic(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data) -> None:
    _atomic(Path(path), lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def save_model(directory: Path, model: VAE, config: dict) -> None:
    """`config` must hold the `model` section build_model needs, plus anything worth keeping."""
    directory = Path(directory)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    _atomic(directory / WEIGHTS, lambda tmp: torch.save(state, tmp))
    write_json(directory / CONFIG, config)


def load_model(directory: Path, device: torch.device | str = "cpu") -> tuple[VAE, dict]:
    directory = Path(directory)
    if not (directory / WEIGHTS).is_file() or not (directory / CONFIG).is_file():
        raise VaelabError(f"{directory} holds no trained model ({WEIGHTS} + {CONFIG}); "
                          "run its training stage first (dvc repro)")
    config = json.loads((directory / CONFIG).read_text())
    model = build_model(config["model"])
    model.load_state_dict(torch.load(directory / WEIGHTS, map_location="cpu", weights_only=True))
    return model.to(device).eval(), config


def save_training_state(path: Path, state: dict) -> None:
    _atomic(Path(path), lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path) -> dict | None:
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and how to recover
        raise VaelabError(f"checkpoint {path} is unreadable ({type(e).__name__}); delete it to "
                          "train from scratch") from None
