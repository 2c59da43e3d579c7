"""The `beta_study` stage: the shapes VAEs (one per beta, each over seeds), the shapes autoencoders
and the CIFAR-10 beta pair side by side: reconstruction, KL, disentanglement, total correlation,
latent geometry, and the reparameterization gradient check; reports/theory.md answers the four
theory questions with those numbers (templates/theory.md.j2)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from . import datasets, store, study_plots, templates, tracking
from .compare import METRICS_BETA, beta_key, load_run_model, read_eval, relative, shapes_runs
from .config import dataset_config, run_config
from .metrics.disentanglement import gaussian_total_correlation
from .metrics.latent import estimator_variances
from .models import encode_batches
from .runtime import resolve_device
from .sweep import (
    SPREAD_KEYS,
    differs,
    factor_spread,
    last_fifth_change,
    mean_row,
    spread,
    study_row,
)

THEORY = store.REPORTS / "theory.md"
HEADLINE_STUDY = ("kl", "recon_mse", "mig", "factor_vae")
# The measures on which theory.md places the autoencoder against every VAE.
PLACED = ("prior_relative_error", "midpoint_relative_error", "recon_mse", "path_max_over_mean")
# The numbers of one shapes model in metrics_beta.json: those summarised over seeds
# (sweep.SPREAD_KEYS), then what is not averaged (per-dim lists, settings); its eval JSON keeps the
# matrices and per-path values.
SUMMARY_KEYS = (
    *SPREAD_KEYS,
    "kl_per_dim",
    "mig_per_factor",
    "latent_dim",
    "beta",
    "epochs",
)


def shapes_summary_row(metrics: dict) -> dict:
    row = study_row(metrics)
    return {key: row[key] for key in SUMMARY_KEYS if key in row}


def cifar_pair(params: dict, config: dict, device: torch.device) -> dict[str, dict]:
    """The CIFAR-10 beta pair `compare.beta_study.cifar_pair` keyed by beta, in the shape of the
    shapes rows, with the Gaussian total correlation of the codes of `cifar_codes` test images."""
    pair = config["cifar_pair"]
    name = run_config(params, pair[0])["dataset"]  # the pair's one dataset (config.py)
    images = datasets.load(name, dataset_config(params, name))["x_test"][: config["cifar_codes"]]
    out = {}
    for run in pair:
        m, beta = read_eval(run), run_config(params, run)["beta"]
        codes = encode_batches(load_run_model(run, device), images, device)
        out[beta_key(beta)] = {
            "model": run,
            "beta": beta,
            "epochs": m.get("epochs"),
            **{key: m[f"test_{key}"] for key in ("recon_mse", "kl", "bpd")},
            **{key: m[key] for key in ("active_units", "latent_dim", "sample_sharpness")},
            "gaussian_tc": gaussian_total_correlation(*codes),
        }
    return dict(sorted(out.items(), key=lambda item: float(item[0])))


def convergence(params: dict, run: str, training_images: int) -> dict:
    """How long a shapes run trained and how flat it stopped: its epochs, optimiser steps and the
    relative change of its test MSE over the last fifth of its epochs (the training curves)."""
    config = run_config(params, run)
    mse = [row["test_mse"] for row in store.read_curves(store.curves_path(run))]
    return {
        "epochs": len(mse),
        "steps": len(mse) * math.ceil(training_images / config["batch_size"]),
        "batch_size": config["batch_size"],
        "test_mse_last_fifth_change": last_fifth_change(mse),
    }


def pooled_paths(evals: list[dict]) -> dict[str, list[float]]:
    """The interpolation paths of several seeds as one set (study_plots.plot_smoothness's input)."""
    return {
        key: [value for m in evals for value in m[key]]
        for key in ("path_ratios", "path_mean_steps")
    }


def study_headline(study: dict) -> dict:
    """The DVC metrics: per beta and the autoencoder, the seeds' means of HEADLINE_STUDY."""
    groups = {f"beta_{label}": stats for label, stats in study["shapes_spread"].items()}
    groups["autoencoder"] = study["autoencoder_spread"]
    return {
        name: {key: stats[key]["mean"] for key in HEADLINE_STUDY if key in stats}
        for name, stats in groups.items()
    }


def theory_markdown(study: dict) -> str:
    """reports/theory.md from metrics_beta.json; each comparison word is chosen from the numbers."""
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


def beta_study(params: dict) -> dict:
    """reports/metrics_beta.json, reports/theory.md, reports/figures/beta_study/."""
    tracking.check_tracking_server()  # it logs to an MLflow run at the end: fail now
    config = params["compare"]["beta_study"]
    device, seed = resolve_device(params["device"]), config["seed"]
    runs = shapes_runs(params, config)  # lowest beta first
    autoencoder, autoencoders = config["autoencoder"], config["autoencoders"]
    groups = {**runs, "autoencoder": autoencoders}  # per beta label its seeds' runs, then the AEs'
    shapes_name = run_config(params, autoencoder)["dataset"]  # every run's (config.py)
    settings = params["evaluate"][shapes_name]
    evals = {run: read_eval(run) for group in groups.values() for run in group}
    group_evals = {label: [evals[run] for run in group] for label, group in groups.items()}
    rows = {label: list(map(shapes_summary_row, ms)) for label, ms in group_evals.items()}
    spreads = {label: spread(group_rows) for label, group_rows in rows.items()}
    means = {label: mean_row(rows[label], groups[label], spreads[label]) for label in groups}
    ae_spread, ae_mean = spreads.pop("autoencoder"), means.pop("autoencoder")
    pair = list(config["cifar_pair"])
    cifar = cifar_pair(params, config, device)

    dataset = datasets.load(shapes_name, dataset_config(params, shapes_name))
    # the betas compared with the autoencoder: the lowest, and 5 (the assignment's) or else the top
    low = next(iter(runs))
    high = next((label for label in runs if float(label) == 5.0), list(runs)[-1])
    shown = {label: group[0] for label, group in runs.items()}  # the first seed's, in figures
    low_model = load_run_model(shown[low], device)
    active = evals[shown[low]]["active_dims"]
    gradient = None
    if active:
        images = dataset["x_test"][: config["gradient_images"]]
        gradient = estimator_variances(low_model, images, active, config["gradient_samples"], seed)
        gradient["beta"] = low
    likelihood = run_config(params, shown[low])["model"]["likelihood"]
    trained = {run: convergence(params, run, len(dataset["x_train"])) for run in evals}
    # ln(distinct factor combinations), in nats: what a code must carry to name every image
    factors = torch.cat([dataset["factors_train"], dataset["factors_test"]])
    information = math.log(len(factors.unique(dim=0)))
    study = {
        "shapes": means,
        "shapes_spread": spreads,
        "shapes_autoencoder": ae_mean,
        "autoencoder_spread": ae_spread,
        # per beta: each factor's MIG and the latent carrying it
        "factors": {label: factor_spread(group_evals[label]) for label in runs},
        "best_beta": max(spreads, key=lambda label: spreads[label]["mig"]["mean"]),
        # optimiser steps per beta (every seed trains alike), and every run's convergence
        "steps": {label: trained[group[0]]["steps"] for label, group in groups.items()},
        "convergence": trained,
        "factor_information_nats": information,
        "likelihood": likelihood["kind"],
        "likelihood_sigma": likelihood.get("sigma"),
        "cifar10": cifar,
        "reparameterization": gradient,
        "runs": {
            "shapes": runs,
            "autoencoder": autoencoder,
            "autoencoders": autoencoders,
            "cifar10": pair,
        },
        "factor_names": dataset.get("factor_names", []),
        "compared": {"low": low, "high": high},
        "evaluation": {
            "test_images": evals[autoencoder].get("test_images", len(dataset["x_test"])),
            "code_images": evals[autoencoder].get("code_images"),
            "paths": settings["paths"],
            "path_steps": settings["path_steps"],
            "prior_samples": settings["prior_samples"],
            "cifar_codes": config["cifar_codes"],
        },
    }

    order = torch.randperm(len(dataset["x_test"]), generator=torch.Generator().manual_seed(seed))
    models = {
        "autoencoder": load_run_model(autoencoder, device),
        f"beta = {low}": low_model,
        f"beta = {high}": low_model if high == low else load_run_model(shown[high], device),
    }
    out = store.figures_dir("beta_study")
    paths = {key: out / f"{key}.png" for key in ("beta_sweep", "interpolation_smoothness")}
    paths["autoencoder_vs_vae"] = out / "autoencoder_vs_vae_shapes.png"
    study_plots.plot_sweep(spreads, ae_spread, information, paths["beta_sweep"])
    study_plots.plot_smoothness(
        {
            "autoencoder": pooled_paths(group_evals["autoencoder"]),
            **{f"beta = {label}": pooled_paths(group_evals[label]) for label in runs},
        },
        paths["interpolation_smoothness"],
    )
    study_plots.plot_autoencoder_vs_vae(
        models,
        dataset["x_test"][order[:2]],
        paths["autoencoder_vs_vae"],
        steps=settings["path_steps"],
        seed=seed,
    )
    study["figures"] = {key: relative(path) for key, path in paths.items()}
    text = theory_markdown(study)
    store.atomic_write(THEORY, lambda tmp: Path(tmp).write_text(text))
    store.write_json(METRICS_BETA, study)
    store.write_json(store.headline_path("beta_study"), study_headline(study))
    if gradient is not None:
        tracking.log_final(shown[low], {"reparameterization": gradient})
    print(
        f"beta study: {len(runs)} betas ({', '.join(runs)}) x {len(runs[low])} seeds, "
        f"{len(autoencoders)} autoencoders, CIFAR-10 pair {' / '.join(pair)}; wrote "
        f"{METRICS_BETA} and {THEORY}"
    )
    return study
