"""params.yaml, read and checked once: every missing key, wrong type, NaN/inf or unknown name fails
in one line that names the key and the fix, before any work starts.

Each section is checked against a small schema (key -> rule). `load_params` returns the whole file
with numbers converted to their types; stages take their part with `run_config` and friends.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from .errors import VaelabError

OBJECTIVES = ("vae", "ae", "classifier")
SOURCES = ("cifar10", "celeba", "shapes")
ARCHITECTURES = {"vae": ("fc", "conv"), "ae": ("fc", "conv"), "classifier": ("resnet",)}


def fail(key: str, problem: str) -> None:
    raise VaelabError(
        f"params.yaml: {key} {problem}; fix it in params.yaml (or dvc exp run -S {key}=...)"
    )


# Rules: ("int", low), ("float", low, low_exclusive), ("fraction",) in [0, 1), ("bool",), ("str",),
# ("choice", options), ("ints",) non-empty list of positive ints, ("floats",), ("strs",), ("names",)
# (run names), ("path",) a string or null.
def _check(value, rule: tuple, key: str):
    kind = rule[0]
    if kind in ("int", "float", "fraction"):
        if isinstance(value, bool):
            fail(key, f"must be a number, got {value!r}")
        try:
            # YAML 1.1 reads "1e-3" as a string, so numbers are converted, not only type-checked.
            number = int(value) if kind == "int" else float(value)
            if kind == "int" and number != float(value):
                raise ValueError
        except (TypeError, ValueError, OverflowError):
            fail(key, f"must be {'an integer' if kind == 'int' else 'a number'}, got {value!r}")
        if not math.isfinite(number):
            fail(key, f"must be a finite number, got {value!r}")
        if kind == "fraction" and not 0 <= number < 1:
            fail(key, f"must be in [0, 1), got {value!r}")
        if kind in ("int", "float") and len(rule) > 1:
            low, exclusive = rule[1], len(rule) > 2 and rule[2]
            if number < low or (exclusive and number == low):
                fail(key, f"must be {'>' if exclusive else '>='} {low}, got {value!r}")
        return number
    if kind == "bool":
        if not isinstance(value, bool):
            fail(key, f"must be true or false, got {value!r}")
        return value
    if kind == "str":
        if not isinstance(value, str) or not value:
            fail(key, f"must be a non-empty string, got {value!r}")
        return value
    if kind == "path":
        if value is not None and not isinstance(value, str):
            fail(key, f"must be a path or null, got {value!r}")
        return value
    if kind == "choice":
        if value not in rule[1]:
            fail(key, f"must be one of {', '.join(map(str, rule[1]))}, got {value!r}")
        return value
    if kind in ("ints", "floats", "strs", "names"):
        if not isinstance(value, list) or not value:
            fail(key, f"must be a non-empty list, got {value!r}")
        item_rule = {"ints": ("int", 1), "floats": ("float",), "strs": ("str",), "names": ("str",)}[
            kind
        ]
        return [_check(item, item_rule, f"{key}[{i}]") for i, item in enumerate(value)]
    raise AssertionError(f"unknown rule {rule}")


def _section(parent: dict, key: str, where: str) -> dict:
    section = parent.get(key)
    if not isinstance(section, dict):
        fail(where, "is missing or not a mapping")
    return section


def _checked(section: dict, schema: dict, where: str, optional: dict | None = None) -> dict:
    """A copy of `section` with every key of `schema` present and checked; `optional` keys get defaults."""
    out = dict(section)
    for key, rule in schema.items():
        if key not in section:
            fail(f"{where}.{key}", "is missing")
        out[key] = _check(section[key], rule, f"{where}.{key}")
    for key, (rule, default) in (optional or {}).items():
        out[key] = _check(section[key], rule, f"{where}.{key}") if key in section else default
    return out


DATASET_SCHEMAS = {
    "cifar10": {
        "image_size": ("choice", (32,)),
        "mirror_dirs": ("strs",),
        "official_md5": ("str",),
        "png_sha256": ("str",),
        "allow_download": ("bool",),
        "train_limit": ("int", 0),
        "test_limit": ("int", 0),
    },
    "celeba": {
        "image_size": ("int", 8),
        "archive_sha256": ("str",),
        "image_folder": ("path",),
        "crop_fraction": ("float", 0, True),
        "max_images": ("int", 0),
        "test_count": ("int", 1),
    },
    "shapes": {
        "image_size": ("choice", (32,)),
        "shapes": ("strs",),
        "hue": ("int", 1),
        "scale": ("int", 1),
        "rotation": ("int", 1),
        "x": ("int", 1),
        "y": ("int", 1),
        "test_count": ("int", 1),
        "seed": ("int", 0),
    },
}

RUN_SCHEMA = {
    "dataset": ("str",),
    "objective": ("choice", OBJECTIVES),
    "epochs": ("int", 1),
    "batch_size": ("int", 2),
    "lr": ("float", 0, True),
    "seed": ("int", 0),
}
VAE_SCHEMA = {"beta": ("float", 0)}
CLASSIFIER_SCHEMA = {
    "optimizer": ("choice", ("sgd", "adam")),
    "warmup_fraction": ("fraction",),
    "weight_decay": ("float", 0),
    "label_smoothing": ("fraction",),
    "augment": ("bool",),
    "mixed_precision": ("choice", ("auto", True, False)),
}

EVALUATE_SCHEMA = {
    "batch_size": ("int", 1),
    "active_threshold": ("float", 0),
    "interpolation_steps": ("int", 2),
    "traversal_dims": ("int", 1),
    "traversal_span": ("float", 0, True),
    "seed": ("int", 0),
}
EVALUATE_EXTRA = {
    "celeba": {
        "sample_count": ("int", 2),
        "shell_radii": ("floats",),
        "consistency_quantile": ("fraction",),
        "neighbourhood_distances": ("floats",),
        "attributes": ("strs",),
        "strengths": ("floats",),
        "gmm_components": ("int", 1),
    },
    "shapes": {
        "code_count": ("int", 2),
        "mi_bins": ("int", 2),
        "dci_trees": ("int", 1),
        "dci_max_depth": ("int", 1),
        "prior_samples": ("int", 1),
        "paths": ("int", 1),
        "path_steps": ("int", 3),
        "traversal_steps": ("int", 2),
    },
    "cifar10": {},
}
COMPARE_SCHEMAS = {
    "sample_quality": {
        "runs": ("names",),
        "judge": ("str",),
        "sample_count": ("int", 2),
        "gmm_components": ("int", 1),
        "blur_sigma": ("float", 0, True),
        "batch_size": ("int", 1),
        "seed": ("int", 0),
        "inception_weights": ("path",),
    },
    "beta_study": {
        "runs": ("names",),
        "autoencoder": ("str",),
        "cifar_pair": ("names",),
        "cifar_codes": ("int", 2),
        "gradient_images": ("int", 1),
        "gradient_samples": ("int", 2),
        "seed": ("int", 0),
    },
}
RENDER_SCHEMA = {"seed": ("int", 0)}


def _check_model(model, objective: str, where: str) -> dict:
    if not isinstance(model, dict):
        fail(where, "is missing (arch and its sizes)")
    arch = _check(model.get("arch"), ("choice", ARCHITECTURES[objective]), f"{where}.arch")
    if arch == "resnet":
        return {"arch": arch, "width": _check(model.get("width"), ("int", 1), f"{where}.width")}
    layers = "hidden" if arch == "fc" else "widths"
    if layers not in model:
        fail(f"{where}.{layers}", "is missing (a list of layer widths)")
    return {
        "arch": arch,
        "latent_dim": _check(model.get("latent_dim"), ("int", 1), f"{where}.latent_dim"),
        layers: _check(model[layers], ("ints",), f"{where}.{layers}"),
        "initial_sigma": _check(
            model.get("initial_sigma", 0.1), ("float", 0, True), f"{where}.initial_sigma"
        ),
    }


def check_params(params) -> dict:
    """The whole params.yaml checked, numbers converted; raises VaelabError naming the first bad key."""
    if not isinstance(params, dict):
        raise VaelabError(
            "params.yaml must be a mapping of sections; see docs/design.md for its layout"
        )
    out = dict(params)
    out["device"] = _check(params.get("device"), ("str",), "device")
    out["tracking"] = _checked(
        _section(params, "tracking", "tracking"), {"sample_every": ("int", 1)}, "tracking"
    )

    datasets = _section(params, "datasets", "datasets")
    out["datasets"] = {}
    for name, section in datasets.items():
        where = f"datasets.{name}"
        if not isinstance(section, dict):
            fail(where, "must be a mapping")
        source = _check(section.get("source"), ("choice", SOURCES), f"{where}.source")
        extra = {"mirror_dirs": (("strs",), [])} if source != "cifar10" else {}
        out["datasets"][name] = _checked(section, DATASET_SCHEMAS[source], where, extra)

    out["runs"] = {}
    for name, section in _section(params, "runs", "runs").items():
        where = f"runs.{name}"
        if not isinstance(section, dict):
            fail(where, "must be a mapping")
        run = _checked(section, RUN_SCHEMA, where)
        if run["dataset"] not in out["datasets"]:
            fail(f"{where}.dataset", f"names no dataset of datasets ({', '.join(out['datasets'])})")
        objective = run["objective"]
        run["model"] = _check_model(section.get("model"), objective, f"{where}.model")
        if objective == "classifier":
            run.update(_checked(section, CLASSIFIER_SCHEMA, where))
            if "y_train" not in LABELLED_SOURCES.get(out["datasets"][run["dataset"]]["source"], ()):
                fail(f"{where}.dataset", "must be a labelled dataset (cifar10) for a classifier")
        else:
            run.update(
                _checked(section, VAE_SCHEMA, where) if objective == "vae" else {"beta": 0.0}
            )
        out["runs"][name] = run

    evaluate = _section(params, "evaluate", "evaluate")
    out["evaluate"] = {}
    for dataset in sorted({run["dataset"] for run in out["runs"].values()}):
        source = out["datasets"][dataset]["source"]
        schema = {**EVALUATE_SCHEMA, **EVALUATE_EXTRA[source]}
        out["evaluate"][dataset] = _checked(
            _section(evaluate, dataset, f"evaluate.{dataset}"), schema, f"evaluate.{dataset}"
        )

    compare = _section(params, "compare", "compare")
    out["compare"] = {
        name: _checked(_section(compare, name, f"compare.{name}"), schema, f"compare.{name}")
        for name, schema in COMPARE_SCHEMAS.items()
    }
    for name, section in out["compare"].items():
        named = [
            *section["runs"],
            *section.get("cifar_pair", []),
            *[section[k] for k in ("judge", "autoencoder") if k in section],
        ]
        for run in named:
            if run not in out["runs"]:
                fail(f"compare.{name}", f"names run {run!r}, which runs does not define")
    out["render"] = _checked(_section(params, "render", "render"), RENDER_SCHEMA, "render")
    return out


# What each source carries beside the images (datasets/ yields these keys).
LABELLED_SOURCES = {"cifar10": ("y_train", "y_test", "classes")}


def load_params(path: str | Path = "params.yaml") -> dict:
    path = Path(path)
    if not path.is_file():
        raise VaelabError(f"{path} not found; run from the project root (where dvc.yaml is)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise VaelabError(
            f"{path} is not valid YAML ({str(e).splitlines()[0]}); fix its syntax"
        ) from None
    return check_params(params)


def run_config(params: dict, name: str) -> dict:
    """The checked `runs.<name>`, with its name."""
    if name not in params["runs"]:
        raise VaelabError(
            f"unknown run {name!r}; choose one of {', '.join(params['runs'])} (params.yaml runs)"
        )
    return {"name": name, **params["runs"][name]}


def dataset_config(params: dict, name: str) -> dict:
    """The checked `datasets.<name>`, with its name."""
    if name not in params["datasets"]:
        raise VaelabError(
            f"unknown dataset {name!r}; choose one of {', '.join(params['datasets'])} "
            "(params.yaml datasets)"
        )
    return {"name": name, **params["datasets"][name]}


def evaluate_config(params: dict, dataset: str) -> dict:
    return params["evaluate"][dataset]


def compare_config(params: dict, name: str) -> dict:
    if name not in params["compare"]:
        raise VaelabError(
            f"unknown comparison {name!r}; choose one of {', '.join(params['compare'])}"
        )
    return params["compare"][name]
