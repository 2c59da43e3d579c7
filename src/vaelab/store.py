"""Where everything lives on disk, and how it is written so that nothing is ever half-written.

Every file goes through a temporary file in the same folder and a rename. Models are a
`state_dict` plus a JSON config, read back with `torch.load(..., weights_only=True)`; a file torch
refuses, or a full disk, becomes one VaelabError line naming the file and the fix.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .errors import VaelabError

DATA = Path("data")
MODELS = Path("models")
CHECKPOINTS = Path("checkpoints")  # outside DVC's outputs, which DVC deletes before a stage runs
REPORTS = Path("reports")
WEIGHTS, CONFIG, TRAINING_STATE = "model.pt", "config.json", "checkpoint.pt"


def data_path(dataset: str) -> Path:
    return DATA / f"{dataset}.npz"


def model_dir(run: str) -> Path:
    return MODELS / run


def curves_path(run: str) -> Path:
    return REPORTS / "curves" / f"{run}.csv"


def eval_path(run: str) -> Path:
    return REPORTS / "eval" / f"{run}.json"


def headline_path(name: str) -> Path:
    """reports/metrics/<name>.json: a run's, a sweep's or a comparison's DVC metrics."""
    return REPORTS / "metrics" / f"{name}.json"


def figures_dir(owner: str) -> Path:
    """reports/figures/<owner>/: a run's, a sweep's or a comparison's figures."""
    return REPORTS / "figures" / owner


def atomic_write(path: Path, write) -> None:
    """`write(tmp_path)`, then rename onto `path`: a crash or a full disk leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        # torch.save reports ENOSPC as a RuntimeError from its zip writer, not as an OSError.
        disk_full = (isinstance(e, OSError) and e.errno == errno.ENOSPC) or (
            isinstance(e, RuntimeError)
            and ("No space left" in str(e) or "file write failed" in str(e))
        )
        if disk_full:
            raise VaelabError(
                f"disk full while writing {path}; free space on {path.parent.resolve()} and rerun "
                "(the previous file, if any, is intact)"
            ) from None
        raise


def _existing(path: Path, produced_by: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"{path} is missing; run {produced_by} first (dvc repro)")
    return path


def write_json(path: Path, data) -> None:
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=2) + "\n"))


def read_json(path: Path, produced_by: str = "its stage") -> dict:
    path = _existing(path, produced_by)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise VaelabError(
            f"{path} is not valid JSON ({e}); rerun {produced_by} (dvc repro -f)"
        ) from None


def write_npz(path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would append .npz to a name
            np.savez(f, **arrays)

    atomic_write(path, write)


def read_npz(path: Path, produced_by: str = "its stage") -> dict[str, np.ndarray]:
    """Every array of an .npz, read without pickle (object arrays are refused)."""
    path = _existing(path, produced_by)
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError) as e:
        raise VaelabError(
            f"{path} is unreadable ({str(e).splitlines()[0]}); rerun {produced_by} (dvc repro -f)"
        ) from None


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, algorithm).hexdigest()


def verify_checksum(path: Path, algorithm: str, expected: str) -> None:
    actual = file_digest(path, algorithm)
    if actual != expected.lower():
        raise VaelabError(
            f"{path}: {algorithm} is {actual}, expected {expected}; the file is corrupt, "
            "truncated or not the expected release: replace it with a good copy"
        )


def save_model(directory: Path, model: torch.nn.Module, config: dict) -> None:
    """`config` holds the `model` section `models.build_model` needs, plus anything worth keeping."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    atomic_write(Path(directory) / WEIGHTS, lambda tmp: torch.save(state, tmp))
    write_json(Path(directory) / CONFIG, config)


def load_model(directory: Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    from .models import build_model

    directory = Path(directory)
    weights, config_path = directory / WEIGHTS, directory / CONFIG
    if not weights.is_file() or not config_path.is_file():
        raise VaelabError(
            f"{directory} holds no trained model ({WEIGHTS} + {CONFIG}); run its training "
            "stage first (dvc repro)"
        )
    config = read_json(config_path, "its training stage")
    model = build_model(config["model"])
    try:  # weights_only: a file holding code is refused
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError or EOFError, depending on the damage
        raise VaelabError(
            f"{weights} is not a plain state_dict (refused by torch.load(weights_only=True): "
            f"{type(e).__name__}); delete it and rerun its training stage"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise VaelabError(
            f"{weights} does not fit the model of {config_path} "
            f"({str(e).splitlines()[0]}); retrain it (dvc repro -f)"
        ) from None
    return model.to(device).eval(), config


def save_training_state(path: Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_state(path: Path) -> dict | None:
    """The checkpoint at `path`, None if there is none; an unreadable one is an error naming the fix."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # UnpicklingError, RuntimeError or EOFError, depending on the damage
        raise VaelabError(
            f"checkpoint {path} is unreadable; delete {path.parent} to train from scratch"
        ) from None


def write_curves(path: Path, history: list[dict]) -> None:
    atomic_write(
        path, lambda tmp: pd.DataFrame(history).to_csv(tmp, index=False, lineterminator="\r\n")
    )


def read_curves(path: Path) -> list[dict]:
    """One dict of floats per epoch, each read back exactly as written (pandas 3's parser)."""
    curves = pd.read_csv(_existing(path, "the training stage that writes it"), dtype=float)
    return curves.to_dict("records")
