"""The `render` stage: the cross-run figures, reports/summary.md and reports/README.md (worded by
wording.py and tables.py from what the other stages wrote). `figure_list` is the one list of the
report's figures: the README links exactly those, and render checks that each exists."""

from __future__ import annotations

from importlib import resources
from itertools import groupby
from pathlib import Path

import torch
import yaml

from . import datasets, plots, store, study_plots, templates
from .compare import METRICS_BETA, SAMPLE_QUALITY, load_run_model, read_eval, shapes_runs
from .config import run_config, stage_name
from .errors import VaelabError
from .runtime import resolve_device
from .wording import beta_summary, fit, report_readme

SUMMARY = store.REPORTS / "summary.md"
README = store.REPORTS / "README.md"
# The figures render draws, in reports/figures/compare/.
COMPARE_FIGURES = {
    "curves": "curves.png",
    "faces_curves": "faces_curves.png",
    "shapes_curves": "shapes_curves.png",
    "baseline_vs_pair": "fc_vs_conv.png",
    "beta_comparison": "beta_comparison.png",
}
# The report's figures in README order: (section, whose, file, caption template); what `whose`
# means is said in templates/figures.yaml.
FIGURES = yaml.safe_load(resources.files(templates).joinpath("figures.yaml").read_text())


def roles(params: dict) -> dict:
    """The runs each part of the report is about, from params.yaml: `cifar` (judged by the
    sample-quality stage), `pair` (its beta pair), `baseline` (the other judged run, compared with
    the pair's first), `shapes` and `autoencoder` (the beta study), `faces` (VAEs on CelebA)."""
    quality, study = params["compare"]["sample_quality"], params["compare"]["beta_study"]
    pair = list(study["cifar_pair"])  # two of quality's runs, which hold a third (config.py)
    others = [run for run in quality["runs"] if run not in pair]
    faces = [
        name
        for name, run in params["runs"].items()
        if run["objective"] == "vae" and params["datasets"][run["dataset"]]["source"] == "celeba"
    ]
    return {
        "cifar": list(quality["runs"]),
        "pair": pair,
        "baseline": others[0],
        # the first seed of each beta: the shapes runs whose curves and traversals are shown
        "shapes": [group[0] for group in shapes_runs(params, study).values()],
        "autoencoder": study["autoencoder"],
        "faces": faces,
    }


def figure_list(params: dict, quality: dict, study: dict) -> list[tuple[str, str, str]]:
    """Every figure of the report as (section, path relative to reports/, caption), from FIGURES."""
    r = roles(params)
    one, five = r["pair"]
    runs = {**r, "one": [one], "quality": r["cifar"], "study": [None], "once": [None]}
    runs["if_faces"] = [None] if r["faces"] else []
    fields = {"baseline": r["baseline"], "one": one, "five": five, **study["compared"]}
    out = []
    for (section, whose), rows in groupby(FIGURES, key=lambda row: row[:2]):
        rows = list(rows)
        for run in runs[whose]:
            if run is not None:  # a VAE: every run the report shows is one (config.py)
                config = run_config(params, run)
                settings = params["evaluate"][config["dataset"]]
                fields.update(
                    run=run,
                    described=f"`{run}` ({config['model']['arch']} VAE, beta = {config['beta']:g})",
                    steps=settings["interpolation_steps"],
                    span=settings["traversal_span"],
                )
            for _, _, file, caption in rows:
                if whose == "quality":
                    path = quality["figures"][run][file]
                elif whose == "study":
                    path = study["figures"][file]
                elif file in COMPARE_FIGURES:
                    path = "figures/compare/" + COMPARE_FIGURES[file]
                else:
                    path = f"figures/{run}/{file}"
                out.append((section, path, caption.format(**fields)))
    return out


def draw_comparisons(params: dict, inputs: dict, device) -> list[Path]:
    """The figures of reports/figures/compare/ from `read_inputs`."""
    r, evals, histories = inputs["roles"], inputs["evals"], inputs["histories"]
    path = {key: store.figures_dir("compare") / file for key, file in COMPARE_FIGURES.items()}
    curves = {
        "curves": r["cifar"],
        "shapes_curves": [*r["shapes"], r["autoencoder"]],
        "faces_curves": r["faces"],
    }
    drawn = []

    def wrote(figure: Path) -> None:  # progress: the stage says what it writes as it goes
        drawn.append(figure)
        print(f"wrote {figure}", flush=True)

    for key, runs in curves.items():
        if runs:  # no faces runs, no faces curves
            plots.plot_curves({run: histories[run] for run in runs}, path[key])
            wrote(path[key])

    one, five, baseline = *r["pair"], r["baseline"]
    dataset = run_config(params, one)["dataset"]
    x_test = datasets.load(dataset, params["datasets"][dataset])["x_test"]
    generator = torch.Generator().manual_seed(params["render"]["seed"])
    images = x_test[torch.randperm(len(x_test), generator=generator)[:8]]
    models = {run: load_run_model(run, device) for run in (baseline, one, five)}
    shared = torch.randn(16, models[one].latent_dim, generator=generator)

    def codes(run: str) -> torch.Tensor:
        # Models of different latent sizes cannot share codes; each then decodes its own draws.
        latent = models[run].latent_dim
        return shared if latent == shared.shape[1] else torch.randn(16, latent, generator=generator)

    study_plots.plot_side_by_side(
        (baseline, models[baseline], codes(baseline)),
        (one, models[one], shared),
        images,
        path["baseline_vs_pair"],
    )
    wrote(path["baseline_vs_pair"])
    study_plots.plot_side_by_side(
        (f"beta = {run_config(params, one)['beta']:g}", models[one], shared),
        (f"beta = {run_config(params, five)['beta']:g}", models[five], codes(five)),
        images,
        path["beta_comparison"],
        kl_per_dim={one: evals[one]["kl_per_dim"], five: evals[five]["kl_per_dim"]},
    )
    wrote(path["beta_comparison"])
    return drawn


def read_inputs(params: dict) -> dict:
    """Everything the report's text is made from, read from what the other stages wrote."""
    r = roles(params)
    evals = {
        run: read_eval(run)
        for run in dict.fromkeys([*r["cifar"], *r["shapes"], r["autoencoder"], *r["faces"]])
    }
    quality = store.read_json(SAMPLE_QUALITY, "the sample_quality stage")
    unjudged = ", ".join(run for run in r["cifar"] if run not in quality["runs"])
    if unjudged:  # left by other params
        raise VaelabError(
            f"{SAMPLE_QUALITY} has no numbers for {unjudged}; rerun the sample_quality stage"
        )
    study = store.read_json(METRICS_BETA, "the beta_study stage")
    histories = {run: store.read_curves(store.curves_path(run)) for run in evals}
    for run, rows in histories.items():  # the eval files hold no timings; the curves do
        if rows and "epoch_seconds" in rows[0]:
            evals[run].setdefault("train_seconds", sum(row["epoch_seconds"] for row in rows))
    return {
        "roles": r,
        "evals": evals,
        "histories": histories,
        "quality": quality,
        "study": study,
        "figures": figure_list(params, quality, study),
    }


def compose(params: dict, inputs: dict) -> tuple[str, str]:
    """summary.md and README.md from `read_inputs`; draws nothing, loads no model."""
    r, evals, histories = inputs["roles"], inputs["evals"], inputs["histories"]
    quality, study = inputs["quality"], inputs["study"]
    cifar = {
        run: {
            **evals[run],
            **quality["runs"][run],
            "beta": run_config(params, run)["beta"],
            "model": run_config(params, run)["model"],
        }
        for run in r["cifar"]
    }
    summary = beta_summary(cifar, r["pair"], r["baseline"], study)
    faces = {
        run: {
            **evals[run],
            "fit": fit(histories[run]),
            "image_size": params["datasets"][run_config(params, run)["dataset"]]["image_size"],
        }
        for run in r["faces"]
    }
    return summary, report_readme(cifar, quality, summary, inputs["figures"], study, faces)


def render(params: dict) -> list[Path]:
    """Draw the comparison figures, write summary.md and README.md; returns what was written."""
    inputs = read_inputs(params)
    # Before any drawing: every figure the other stages should have drawn is there.
    missing = [
        path
        for _, path, _ in inputs["figures"]
        if not path.startswith("figures/compare/") and not (store.REPORTS / path).is_file()
    ]
    if missing:
        owner = Path(missing[0]).parts[1]  # a run's figures are drawn by evaluate@<run>
        owner = params["sweeps"].get(owner, [owner])[0]  # a sweep's, by evaluate_sweep@<sweep>
        stage = stage_name("evaluate", owner) if owner in params["runs"] else owner
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise VaelabError(
            f"reports/{missing[0]} is missing{more}; run its stage first: dvc repro {stage}"
        )
    drawn = draw_comparisons(params, inputs, resolve_device(params["device"]))
    summary, readme = compose(params, inputs)
    store.atomic_write(SUMMARY, lambda tmp: Path(tmp).write_text(summary))
    store.atomic_write(README, lambda tmp: Path(tmp).write_text(readme))
    print(f"wrote {SUMMARY} and {README} ({len(drawn)} figures drawn)")
    return [*drawn, SUMMARY, README]
