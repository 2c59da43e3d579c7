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
from .losses import LIKELIHOODS

OBJECTIVES = ("vae", "ae", "classifier")
SOURCES = ("cifar10", "celeba", "shapes")
ARCHITECTURES = {"vae": ("fc", "conv"), "ae": ("fc", "conv"), "classifier": ("resnet",)}
LABELLED_SOURCES = ("cifar10",)  # the sources whose data carry class labels (y_train, y_test)


def fail(key: str, problem: str) -> None:
    raise VaelabError(
        f"params.yaml: {key} {problem}; fix it in params.yaml (or dvc exp run -S {key}=...)"
    )


# Rules: ("int", low), ("float", low, low_exclusive), ("fraction",) in [0, 1), ("bool",), ("str",),
# ("path",) a string or null, ("choice", options), and non-empty lists: ("ints",) of positive
# ints, ("floats",), ("positive_floats",), ("strs",), ("seeds",) of distinct ints >= 0.
LIST_ITEMS = {
    "ints": ("int", 1),
    "floats": ("float",),
    "positive_floats": ("float", 0, True),
    "strs": ("str",),
    "seeds": ("int", 0),
}


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
        if len(rule) > 1:
            low, exclusive = rule[1], len(rule) > 2 and rule[2]
            if number < low or (exclusive and number == low):
                fail(key, f"must be {'>' if exclusive else '>='} {low}, got {value!r}")
        return number
    if kind in LIST_ITEMS:
        if not isinstance(value, list) or not value:
            fail(key, f"must be a non-empty list, got {value!r}")
        items = [_check(item, LIST_ITEMS[kind], f"{key}[{i}]") for i, item in enumerate(value)]
        if kind == "seeds" and len(set(items)) != len(items):
            fail(key, f"must not repeat a seed, got {value!r}")
        return items
    if kind == "choice" and value not in rule[1]:
        fail(key, f"must be one of {', '.join(map(str, rule[1]))}, got {value!r}")
    if kind == "bool" and not isinstance(value, bool):
        fail(key, f"must be true or false, got {value!r}")
    if kind == "str" and (not isinstance(value, str) or not value):
        fail(key, f"must be a non-empty string, got {value!r}")
    if kind == "path" and value is not None and not isinstance(value, str):
        fail(key, f"must be a path or null, got {value!r}")
    return value


def _section(value, where: str) -> dict:
    if not isinstance(value, dict):
        fail(where, "is missing or not a mapping")
    return value


def _checked(section, schema: dict, where: str, optional: dict | None = None) -> dict:
    """A copy of `section` with every key of `schema` present and checked; `optional` keys get defaults."""
    out = dict(_section(section, where))
    for key, rule in schema.items():
        if key not in section:
            fail(f"{where}.{key}", "is missing")
        out[key] = _check(section[key], rule, f"{where}.{key}")
    for key, (rule, default) in (optional or {}).items():
        out[key] = _check(section[key], rule, f"{where}.{key}") if key in section else default
    return out


def at_least(**lows: int) -> dict:
    """Integer rules by their lowest value: at_least(paths=1) == {"paths": ("int", 1)}."""
    return {key: ("int", low) for key, low in lows.items()}


DATASET_SCHEMAS = {
    "cifar10": {
        "image_size": ("choice", (32,)),
        "mirror_dirs": ("strs",),
        "official_md5": ("str",),
        "png_sha256": ("str",),
        "allow_download": ("bool",),
        **at_least(train_limit=0, test_limit=0),
    },
    "celeba": {
        "image_size": ("int", 8),
        "archive_sha256": ("str",),
        "image_folder": ("path",),
        "crop_fraction": ("float", 0, True),
        **at_least(max_images=0, test_count=1),
    },
    "shapes": {
        "image_size": ("choice", (32,)),
        "shapes": ("strs",),
        **at_least(hue=1, scale=1, rotation=1, x=1, y=1, test_count=1, seed=0),
    },
}
RUN_SCHEMA = {
    "dataset": ("str",),
    "objective": ("choice", OBJECTIVES),
    **at_least(epochs=1, batch_size=2),
    "lr": ("float", 0, True),
    "warmup_fraction": ("fraction",),  # linear warm-up over this share of steps, then linear decay
    "grad_clip": ("float", 0),  # the largest gradient norm a step may take; 0 = no clipping
    "seed": ("int", 0),
}
CLASSIFIER_SCHEMA = {
    "optimizer": ("choice", ("sgd", "adam")),
    "holdout": ("int", 0),  # the last N training images, kept from the judge to calibrate it
    "weight_decay": ("float", 0),
    "label_smoothing": ("fraction",),
    "augment": ("bool",),
}
# degrade: blur, down-up sampling and noise on part of each batch (train.degrade), so the judge
# recognises a blurry object as well as a sharp one.
CLASSIFIER_OPTIONAL = {"degrade": (("bool",), False)}
# A VAE's beta rises linearly from 0 over this share of the steps (train.kl_weights); 0 = none.
VAE_OPTIONAL = {"kl_warmup_fraction": (("fraction",), 0.0)}
# Optional for every run (runtime.use_mixed_precision): auto, cuda, true or false; false when absent.
MIXED_PRECISION = {"mixed_precision": (("choice", ("auto", "cuda", True, False)), False)}
EVALUATE_SCHEMA = {
    "batch_size": ("int", 1),
    "active_threshold": ("float", 0),
    **at_least(interpolation_steps=2, traversal_dims=1),
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
        **at_least(code_count=2, mi_bins=2, dci_trees=1, dci_max_depth=1, prior_samples=1),
        **at_least(paths=1, path_steps=3, traversal_steps=2),
    },
    "cifar10": {},
}
# How evaluate@<run> draws the samples of its figures (one sampler for every run, so they compare):
# the prior N(0, tau^2 I), or a Gaussian mixture fitted to the training codes (its covariances
# times tau^2). The mixture's keys are the one setting compare.sample_quality scores too.
GMM_COVARIANCES = ("full", "diag")
GMM_KEYS = ("gmm_components", "gmm_covariance")
SAMPLER_OPTIONAL = {
    "sampler": (("choice", ("prior", "gmm")), "prior"),
    "temperature": (("float", 0, True), 1.0),
    "gmm_components": (("int", 1), 10),
    "gmm_covariance": (("choice", GMM_COVARIANCES), "full"),
}
# The ways of drawing a VAE's codes that compare.sample_quality knows (metrics/sample_quality.py):
# its own prior, an ex-post Gaussian mixture, a second-stage VAE (Dai & Wipf 2019).
SAMPLERS = ("prior", "gmm", "two_stage")
DEFAULT_SAMPLERS = ["prior", "gmm"]
# The keys of a comparison that name runs: lists ("runs" and "autoencoders" may also name sweeps,
# each standing for its seeds' runs), or one run ("judge", "autoencoder").
NAMED_RUNS = ("runs", "autoencoders", "cifar_pair", "cifar_fixed_pair", "judge", "autoencoder")
COMPARE_SCHEMAS = {
    "sample_quality": {
        "runs": ("strs",),
        "judge": ("str",),
        **at_least(sample_count=2, second_stage_hidden=1, second_stage_epochs=1),
        "blur_sigma": ("float", 0, True),
        **at_least(batch_size=1, seed=0),
        "inception_weights": ("path",),
    },
    "beta_study": {
        "runs": ("strs",),
        "autoencoder": ("str",),
        "cifar_pair": ("strs",),
        **at_least(cifar_codes=2, gradient_images=1, gradient_samples=2, seed=0),
    },
}


# temperatures: the prior and the mixture are also scored at each tau > 0; nearest_k: the k of the
# k-NN manifolds of precision, recall, density and coverage.
COMPARE_OPTIONAL = {
    "sample_quality": {
        "temperatures": (("positive_floats",), [1.0]),
        "nearest_k": (("int", 1), 5),
    }
}


def _check_model(model, objective: str, where: str) -> dict:
    if not isinstance(model, dict):
        fail(where, "is missing (arch and its sizes)")
    arch = _check(model.get("arch"), ("choice", ARCHITECTURES[objective]), f"{where}.arch")
    if arch == "resnet":
        return {"arch": arch, "width": _check(model.get("width"), ("int", 1), f"{where}.width")}
    layers = "hidden" if arch == "fc" else "widths"
    if layers not in model:
        fail(f"{where}.{layers}", "is missing (a list of layer widths)")
    checked = {
        "arch": arch,
        "latent_dim": _check(model.get("latent_dim"), ("int", 1), f"{where}.latent_dim"),
        layers: _check(model[layers], ("ints",), f"{where}.{layers}"),
        "likelihood": _check_likelihood(model.get("likelihood"), f"{where}.likelihood"),
    }
    if arch == "conv":  # a dense layer of this many units next to the code; 0 = none
        checked["fc_hidden"] = _check(model.get("fc_hidden", 0), ("int", 0), f"{where}.fc_hidden")
    unknown = set(model) - set(checked)
    if unknown:
        fail(
            f"{where}.{sorted(unknown)[0]}", f"is not a key of a {arch} model; remove or rename it"
        )
    return checked


def _check_likelihood(likelihood, where: str) -> dict:
    """{kind: gaussian | gaussian_fixed, sigma} or {kind: logistic_mixture, mixtures}. The entry may
    hold both keys (so `-S ...likelihood.kind=...` alone switches); only the kind's own is kept."""
    kind = _check(_section(likelihood, where).get("kind"), ("choice", LIKELIHOODS), f"{where}.kind")
    key, rule = (
        ("mixtures", ("int", 1)) if kind == "logistic_mixture" else ("sigma", ("float", 0, True))
    )
    return {"kind": kind, key: _checked(likelihood, {key: rule}, where)[key]}


def _check_run(section, where: str, datasets: dict) -> dict:
    run = _checked(section, RUN_SCHEMA, where, MIXED_PRECISION)
    if run["dataset"] not in datasets:
        fail(f"{where}.dataset", f"names no dataset of datasets ({', '.join(datasets)})")
    run["model"] = _check_model(section.get("model"), run["objective"], f"{where}.model")
    # Checked on top of `run`, not of `section`, so the converted values above are kept.
    if run["objective"] == "classifier":
        run = _checked(run, CLASSIFIER_SCHEMA, where, CLASSIFIER_OPTIONAL)
        if datasets[run["dataset"]]["source"] not in LABELLED_SOURCES:
            fail(f"{where}.dataset", "must be a labelled dataset (cifar10) for a classifier")
    elif run["objective"] == "vae":
        run = _checked(run, {"beta": ("float", 0)}, where, VAE_OPTIONAL)
    else:
        run["beta"] = 0.0  # the plain autoencoder's objective is recon alone
    known = {*RUN_SCHEMA, *MIXED_PRECISION, "model", "beta"}
    if run["objective"] != "classifier":  # an autoencoder shares its sweep template with the VAEs
        known |= set(VAE_OPTIONAL)
    if run["objective"] == "classifier":
        known |= {*CLASSIFIER_SCHEMA, *CLASSIFIER_OPTIONAL}
    unknown = set(section) - known  # a mistyped key would otherwise train with the default
    if unknown:
        fail(f"{where}.{sorted(unknown)[0]}", "is not a key of a run; remove or rename it")
    return run


def member_name(sweep: str, seed: int) -> str:
    """The run of one seed of a sweep: `<sweep>/s<seed>`, so its files nest in the sweep's folders
    (models/<sweep>/s<seed>/, reports/eval/<sweep>/s<seed>.json, ...), which are the stage's outputs."""
    return f"{sweep}/s{seed}"


def sweep_of(run: str) -> str | None:
    """The sweep whose seed `run` is (`<sweep>/s<seed>`), or None for a run of its own."""
    sweep, seed_of_sweep, _ = run.partition("/")
    return sweep if seed_of_sweep else None


def params_key(run: str) -> str:
    """Where a run's settings are in params.yaml: `runs.<run>`, or `sweeps.<sweep>` for the run of
    one seed of a sweep."""
    sweep = sweep_of(run)
    return f"sweeps.{sweep}" if sweep else f"runs.{run}"


def stage_name(kind: str, run: str) -> str:
    """The DVC stage that makes a run's files: `<kind>@<run>`, or `<kind>_sweep@<sweep>` for the
    run of one seed of a sweep."""
    sweep = sweep_of(run)
    return f"{kind}_sweep@{sweep}" if sweep else f"{kind}@{run}"


def check_params(params) -> dict:
    """The whole params.yaml checked, numbers converted; raises VaelabError naming the first bad key."""
    if not isinstance(params, dict):
        raise VaelabError(
            "params.yaml must be a mapping of sections; see docs/design.md for its layout"
        )
    out = dict(params)
    out["device"] = _check(params.get("device"), ("str",), "device")
    out["tracking"] = _checked(params.get("tracking"), {"sample_every": ("int", 1)}, "tracking")

    out["datasets"] = {}
    for name, section in _section(params.get("datasets"), "datasets").items():
        where = f"datasets.{name}"
        section = _section(section, where)
        source = _check(section.get("source"), ("choice", SOURCES), f"{where}.source")
        extra = {"mirror_dirs": (("strs",), [])} if source != "cifar10" else {}
        out["datasets"][name] = _checked(section, DATASET_SCHEMAS[source], where, extra)

    out["runs"] = {}
    for name, section in _section(params.get("runs"), "runs").items():
        if "/" in name:
            fail(
                f"runs.{name}", "has a / in its name (reserved for the seeds of a sweep); rename it"
            )
        out["runs"][name] = _check_run(section, f"runs.{name}", out["datasets"])
    out["sweeps"] = {}
    for name, section in _section(params.get("sweeps", {}), "sweeps").items():
        where = f"sweeps.{name}"
        if name in out["runs"] or "/" in name:
            fail(where, "must be named unlike every run and without a /; rename it")
        section = _section(section, where)
        if "seed" in section:
            fail(f"{where}.seed", "is not a sweep's key: a sweep trains one run per seed of seeds")
        seeds = _check(section.get("seeds"), ("seeds",), f"{where}.seeds")
        shared = {key: value for key, value in section.items() if key != "seeds"}
        for seed in seeds:
            run = _check_run({**shared, "seed": seed}, where, out["datasets"])
            out["runs"][member_name(name, seed)] = run
        out["sweeps"][name] = [member_name(name, seed) for seed in seeds]

    evaluate = _section(params.get("evaluate"), "evaluate")
    out["evaluate"] = {}
    for dataset in sorted({run["dataset"] for run in out["runs"].values()}):
        schema = {**EVALUATE_SCHEMA, **EVALUATE_EXTRA[out["datasets"][dataset]["source"]]}
        optional = SAMPLER_OPTIONAL if out["datasets"][dataset]["source"] == "cifar10" else None
        out["evaluate"][dataset] = _checked(
            evaluate.get(dataset), schema, f"evaluate.{dataset}", optional
        )

    compare = _section(params.get("compare"), "compare")
    out["compare"] = {}
    for name, schema in COMPARE_SCHEMAS.items():
        optional = COMPARE_OPTIONAL.get(name)
        section = _checked(compare.get(name), schema, f"compare.{name}", optional)
        if name == "sample_quality":
            where = f"compare.{name}.samplers"
            section["samplers"] = _check_samplers(section.get("samplers", DEFAULT_SAMPLERS), where)
        if name == "beta_study":  # the autoencoders (one per seed), the one drawn among them
            section.setdefault("autoencoders", [section["autoencoder"]])
        for key in ("runs", "autoencoders"):  # lists of models: a sweep's name stands for its seeds
            if key in section:
                section[key] = with_sweeps_expanded(section[key], out, f"compare.{name}.{key}")
        for key in NAMED_RUNS:
            named = section.get(key, [])
            for run in named if isinstance(named, list) else [named]:
                if run not in out["runs"]:
                    fail(
                        f"compare.{name}.{key}",
                        f"names {run!r}, which is neither a run of runs nor a sweep of sweeps",
                    )
        if name == "beta_study" and section["autoencoder"] not in section["autoencoders"]:
            fail(
                f"compare.{name}.autoencoders",
                f"must hold autoencoder ({section['autoencoder']}), the one its figures draw",
            )
        out["compare"][name] = section
    out["render"] = _checked(params.get("render"), {"seed": ("int", 0)}, "render")
    return out


def _check_samplers(samplers, where: str) -> list[str]:
    """A list of SAMPLERS holding the prior (the VAE's own sampler, which every other is measured
    against), without repeats."""
    if (
        not isinstance(samplers, list)
        or "prior" not in samplers
        or any(s not in SAMPLERS for s in samplers)
    ):
        fail(where, f"must be a list of {', '.join(SAMPLERS)} that holds prior, got {samplers!r}")
    return list(dict.fromkeys(samplers))


def with_sweeps_expanded(names, params: dict, where: str) -> list[str]:
    """A list of run names in which the name of a sweep stands for its seeds' runs."""
    if not isinstance(names, list):
        fail(where, f"must be a list of runs or sweeps, got {names!r}")
    return [member for name in names for member in params["sweeps"].get(name, [name])]


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


def _entry(params: dict, section: str, name: str, what: str) -> dict:
    """`params[section][name]`, or one line listing the names there."""
    if name not in params[section]:
        raise VaelabError(
            f"unknown {what} {name!r}; choose one of {', '.join(params[section])} "
            f"(params.yaml {section})"
        )
    return params[section][name]


def run_config(params: dict, name: str) -> dict:
    """The checked `runs.<name>`, with its name."""
    return {"name": name, **_entry(params, "runs", name, "run")}


def sweep_runs(params: dict, name: str) -> list[str] | None:
    """The runs of the sweep `name` (one per seed), or None when `name` is a run."""
    if name in params["runs"]:
        return None
    if name not in params["sweeps"]:
        names = [run for run in params["runs"] if "/" not in run] + list(params["sweeps"])
        raise VaelabError(
            f"unknown run or sweep {name!r}; choose one of {', '.join(names)} "
            "(params.yaml runs, sweeps)"
        )
    return params["sweeps"][name]


def dataset_config(params: dict, name: str) -> dict:
    """The checked `datasets.<name>`, with its name."""
    return {"name": name, **_entry(params, "datasets", name, "dataset")}


def evaluate_config(params: dict, dataset: str) -> dict:
    return params["evaluate"][dataset]


def compare_config(params: dict, name: str) -> dict:
    return _entry(params, "compare", name, "comparison")
