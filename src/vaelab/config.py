"""params.yaml, checked once before any work: every missing or mistyped key, wrong type, NaN/inf or
unknown name fails in one line naming the key and the fix. Stages read `load_params`' plain dict."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import field_serializer, model_validator

from . import schema
from .errors import VaelabError
from .schema import GMM_KEYS  # noqa: F401  (what stages read from config)
from .validation import Name, Omittable, fail, validated


class Params(schema.Schema):
    device: Name
    tracking: schema.Tracking
    datasets: dict[str, schema.Dataset]
    sweep_templates: Omittable[dict[str, dict[str, Any]]]  # merged into sweeps (<<:), checked there
    runs: dict[schema.RunName, schema.AnyRun]
    sweeps: dict[str, schema.Sweep] = {}
    evaluate: dict[str, dict]  # checked below, by the source of the dataset each entry names
    compare: schema.Compare
    render: schema.Render

    @model_validator(mode="after")
    def _across_sections(self) -> "Params":
        for name, sweep in self.sweeps.items():
            key = f"sweeps.{name}"
            if name in self.runs or "/" in name:
                fail(key, "must be named unlike every run and without a /; rename it")
            if "seed" in sweep.model_extra:
                fail(f"{key}.seed", "is not a sweep's key: it trains a run per seed of seeds")
            for seed in sweep.seeds:
                run = {**sweep.model_extra, "seed": seed}
                self.runs[member_name(name, seed)] = validated(schema.AnyRun, run, key)
        datasets = ", ".join(self.datasets)
        labelled = schema.LABELLED_SOURCES
        for name, run in self.runs.items():
            key = f"{params_key(name)}.dataset"
            if run.dataset not in self.datasets:
                fail(key, f"names no dataset of datasets ({datasets})")
            if run.objective == "classifier" and self.datasets[run.dataset].source not in labelled:
                fail(key, f"must be a labelled dataset ({', '.join(labelled)}) for a classifier")
        for name in self.evaluate.keys() - self.datasets.keys():
            fail(f"evaluate.{name}", f"names no dataset of datasets ({datasets})")
        evaluate = {}  # the settings of the datasets that runs train on
        for name in sorted({run.dataset for run in self.runs.values()}):
            model = schema.EVALUATE[self.datasets[name].source]
            settings = validated(model, self.evaluate.get(name), f"evaluate.{name}")
            evaluate[name] = settings.model_dump()
        self.evaluate = evaluate
        self._check_comparisons()
        return self

    @field_serializer("sweeps")
    def _member_runs(self, sweeps: dict[str, schema.Sweep]) -> dict[str, list[str]]:
        """A sweep, in the checked params, is the list of its runs (whose settings are in runs)."""
        return {name: [member_name(name, seed) for seed in s.seeds] for name, s in sweeps.items()}

    def _check_comparisons(self) -> None:
        sweeps = self._member_runs(self.sweeps)
        quality, study = self.compare.sample_quality, self.compare.beta_study
        if study.autoencoders is None:  # the one autoencoder drawn, unless a list is given
            study.autoencoders = [study.autoencoder]
        for name, section in self.compare:
            for key in schema.NAMED_RUNS[name]:
                named = getattr(section, key)
                if key in ("runs", "autoencoders"):  # a sweep stands for its seeds' runs
                    named = [run for given in named for run in sweeps.get(given, [given])]
                    setattr(section, key, named)
                for run in named if isinstance(named, list) else [named]:
                    if run not in self.runs:
                        fail(
                            f"compare.{name}.{key}",
                            f"names {run!r}, which is neither a run of runs nor a sweep of sweeps",
                        )
        if study.autoencoder not in study.autoencoders:
            fail(
                "compare.beta_study.autoencoders",
                f"must hold autoencoder ({study.autoencoder}), the one its figures draw",
            )
        where = "compare.sample_quality"
        self._comparable(f"{where}.judge", [quality.judge], "classifier")
        self._comparable(f"{where}.runs", quality.runs, "vae", quality.judge)
        where = "compare.beta_study"
        self._comparable(f"{where}.runs", study.runs, "vae")
        self._comparable(f"{where}.autoencoders", study.autoencoders, "ae", *study.runs)
        # Every beta needs the same seeds, or the spreads over seeds would not compare.
        seeds: dict[str, list[int]] = {}
        for run in study.runs:
            seeds.setdefault(f"{self.runs[run].beta:g}", []).append(self.runs[run].seed)
        seed_lists = {tuple(sorted(s)) for s in seeds.values()}
        if len(seed_lists) > 1 or any(len(set(s)) < len(s) for s in seed_lists):
            got = "; ".join(f"beta {label}: seeds {sorted(s)}" for label, s in seeds.items())
            fail(f"{where}.runs", f"must hold every beta with the same distinct seeds, got {got}")
        pair = study.cifar_pair
        if len(pair) != 2 or not set(pair) < set(quality.runs):  # a third: the report's baseline
            fail(
                f"{where}.cifar_pair",
                f"must name two runs of compare.sample_quality.runs, which must hold a third, got "
                f"{pair!r}",
            )
        # as metrics_beta.json names them (compare.beta_key): 1 and 1.0000001 are one entry
        if f"{self.runs[pair[0]].beta:g}" == f"{self.runs[pair[1]].beta:g}":
            fail(f"{where}.cifar_pair", f"must name two runs of different beta, got {pair!r}")

    def _comparable(self, where: str, runs: list[str], objective: str, *others: str) -> None:
        """`runs` (named at `where`) all of `objective`, and of one dataset with `others`."""
        for run in runs:
            if self.runs[run].objective != objective:
                fail(
                    where,
                    f"names {run}, whose objective is {self.runs[run].objective}, where a run of "
                    f"objective {objective} belongs",
                )
        datasets = {run: self.runs[run].dataset for run in [*others, *runs]}
        if len(set(datasets.values())) > 1:  # a comparison across datasets is refused
            mixed = ", ".join(f"{run}: {dataset}" for run, dataset in datasets.items())
            fail(where, f"mixes datasets ({mixed}); name runs of one dataset")


def member_name(sweep: str, seed: int) -> str:
    """The run of one seed of a sweep, whose files nest in the sweep's (models/<sweep>/s<seed>/)."""
    return f"{sweep}/s{seed}"


def sweep_of(run: str) -> str | None:
    """The sweep whose seed `run` is (`<sweep>/s<seed>`), or None for a run of its own."""
    sweep, seed_of_sweep, _ = run.partition("/")
    return sweep if seed_of_sweep else None


def params_key(run: str) -> str:
    """Where a run's settings are in params.yaml: `runs.<run>`, or `sweeps.<sweep>`."""
    sweep = sweep_of(run)
    return f"sweeps.{sweep}" if sweep else f"runs.{run}"


def stage_name(kind: str, run: str) -> str:
    """The DVC stage that makes a run's files: `<kind>@<run>`, or `<kind>_sweep@<sweep>`."""
    sweep = sweep_of(run)
    return f"{kind}_sweep@{sweep}" if sweep else f"{kind}@{run}"


def check_params(params) -> dict:
    """The whole params.yaml checked, as a plain dict; a VaelabError names the first bad key."""
    if not isinstance(params, dict):
        raise VaelabError(
            "params.yaml must be a mapping of sections; see docs/design.md for its layout"
        )
    return validated(Params, params).model_dump()


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
