"""params.yaml: read with yaml.safe_load, checked once, so a typo fails in one line before work starts."""

from __future__ import annotations

from pathlib import Path

import yaml

from .errors import VaelabError
from .models import ARCHITECTURES

MODEL_NAMES = ("fc", "conv", "conv_beta5")


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"{path} not found; run from the project root (where dvc.yaml is)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise VaelabError(f"{path} is not valid YAML ({str(e).splitlines()[0]}); fix its syntax") from None
    if not isinstance(params, dict):
        raise VaelabError(f"{path} must be a mapping of sections; see the README for its layout")
    _check_common(params)
    return params


def _fail(key: str, problem: str) -> None:
    raise VaelabError(f"params.yaml: {key} {problem}; fix it in params.yaml (or dvc exp run -S {key}=...)")


def _number(section: dict, prefix: str, key: str, kind=float, minimum=None, exclusive=False):
    if key not in section:
        _fail(f"{prefix}.{key}", "is missing")
    value = section[key]
    try:
        # YAML 1.1 reads "1e-3" as a string, so numbers are converted, not only type-checked.
        number = kind(value)
        if kind is int and (isinstance(value, bool) or number != float(value)):
            raise ValueError
    except (TypeError, ValueError):
        _fail(f"{prefix}.{key}", f"must be {'an integer' if kind is int else 'a number'}, got {value!r}")
    if minimum is not None and (number <= minimum if exclusive else number < minimum):
        _fail(f"{prefix}.{key}", f"must be {'>' if exclusive else '>='} {minimum}, got {value!r}")
    return number


def _check_common(params: dict) -> None:
    _number(params, "params", "seed", int, 0)
    if not isinstance(params.get("device"), str):
        _fail("device", "must be auto, cpu, cuda, cuda:N or mps")
    data = params.get("data")
    if not isinstance(data, dict):
        _fail("data", "section is missing")
    for key in ("train_limit", "test_limit"):
        _number(data, "data", key, int, 0)
    if not isinstance(data.get("mirror_dirs", []), list):
        _fail("data.mirror_dirs", "must be a list of directories")


def model_section(params: dict, name: str) -> dict:
    """The checked training section of one CIFAR-10 model, numbers converted to their types."""
    if name not in MODEL_NAMES:
        raise VaelabError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return training_section(params, name)


def training_section(params: dict, name: str) -> dict:
    """The checked training section `name` of any VAE (model, beta, epochs, batch_size, lr)."""
    section = params.get(name)
    if not isinstance(section, dict):
        _fail(name, "section is missing")
    model = section.get("model")
    if not isinstance(model, dict):
        _fail(f"{name}.model", "is missing (arch, latent_dim and hidden or widths)")
    if model.get("arch") not in ARCHITECTURES:
        _fail(f"{name}.model.arch", f"must be one of {ARCHITECTURES}, got {model.get('arch')!r}")
    layers_key = "hidden" if model["arch"] == "fc" else "widths"
    layers = model.get(layers_key)
    if not isinstance(layers, list) or not layers or not all(isinstance(w, int) and w > 0 for w in layers):
        _fail(f"{name}.model.{layers_key}", f"must be a non-empty list of positive integers, got {layers!r}")
    checked_model = dict(model, latent_dim=_number(model, f"{name}.model", "latent_dim", int, 1))
    checked_model["initial_sigma"] = _number(model, f"{name}.model", "initial_sigma", float, 0, exclusive=True) \
        if "initial_sigma" in model else 0.1
    return {
        "model": checked_model,
        "beta": _number(section, name, "beta", float, 0),
        "epochs": _number(section, name, "epochs", int, 1),
        "batch_size": _number(section, name, "batch_size", int, 2),
        "lr": _number(section, name, "lr", float, 0, exclusive=True),
    }


def faces_section(params: dict) -> dict:
    """The checked `faces` section: where the CelebA faces come from and how they are prepared."""
    faces = params.get("faces")
    if not isinstance(faces, dict):
        _fail("faces", "section is missing")
    if not isinstance(faces.get("mirror_dirs", []), list):
        _fail("faces.mirror_dirs", "must be a list of directories")
    if faces.get("image_folder") is not None and not isinstance(faces["image_folder"], str):
        _fail("faces.image_folder", "must be a folder path or null")
    crop = _number(faces, "faces", "crop_fraction", float, 0, exclusive=True)
    if crop > 1:
        _fail("faces.crop_fraction", f"must be at most 1 (the whole shorter side), got {crop}")
    return {
        "path": str(faces.get("path", "data/faces.npz")),
        "mirror_dirs": list(faces.get("mirror_dirs") or []),
        "archive_sha256": str(faces.get("archive_sha256", "")),
        "image_folder": faces.get("image_folder"),
        "image_size": _number(faces, "faces", "image_size", int, 8),
        "crop_fraction": crop,
        "max_images": _number(faces, "faces", "max_images", int, 0),
        "test_count": _number(faces, "faces", "test_count", int, 1),
        "experiment": str(faces.get("experiment", "celeba-vae")),
    }
