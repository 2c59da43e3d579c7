"""The cross-run comparisons (`pipeline/compare.py <name>`), each reading what the runs' own
stages wrote (models/<run>/, reports/eval/<run>.json) and writing one JSON, its figures, and for
the beta study reports/theory.md.

* `sample_quality`: the CIFAR-10 VAEs judged by the classifier run (`compare.sample_quality.judge`).
  Per run: an ex-post Gaussian mixture fitted to the training codes (models/samplers/<run>.npz),
  `sample_count` images from each sampler (the prior N(0, I) and the mixture), and the
  reconstructions of real test images, each scored by the judge (fd_clf, is_clf, recognisable)
  and by sharpness. Reference rows scored the same way show what the numbers mean: real test
  images (the floor), Gaussian noise, blurred real test images.
* `beta_study`: the shapes VAEs (one per beta), the shapes autoencoder and the CIFAR-10 beta pair
  side by side: reconstruction, KL, disentanglement, total correlation, latent geometry, and the
  reparameterization gradient check; reports/metrics_beta.json and reports/theory.md.

Each JSON records the paths of its figures (relative to reports/) under "figures", so the report
and theory.md link to what was drawn.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from . import datasets, plots, store, tracking
from .config import (
    GMM_KEYS,
    compare_config,
    dataset_config,
    evaluate_config,
    fail,
    run_config,
    stage_name,
)
from .errors import VaelabError
from .metrics.disentanglement import gaussian_total_correlation
from .metrics.latent import estimator_variances, nearest_index, reference_pixels
from .metrics.sample_quality import (
    TEMPERED,
    fit_latent_gmm,
    fit_second_stage,
    fit_temperature,
    quality_row,
    sample_codes,
    sampler_name,
    sharpness,
)
from .models import classify_batches, decode_batches, encode_batches, reconstruct_batches
from .runtime import resolve_device
from .sweep import (
    factor_information,
    factor_spread,
    last_fifth_change,
    mean_row,
    plot_sweep,
    spread,
)
from .theory import theory_markdown

SAMPLE_QUALITY = store.REPORTS / "sample_quality.json"
METRICS_BETA = store.REPORTS / "metrics_beta.json"
THEORY = store.REPORTS / "theory.md"
SAMPLERS_DIR = store.MODELS / "samplers"
FIGURE_GRID = 36  # images per panel of the samplers figure
LABELLED_GRID = 64  # the 8x8 labelled-samples figure
NEAREST_SHOWN = 10  # samples per sampler in the nearest-training-image figure
HEADLINE_QUALITY = ("fd_clf", "class_min", "class_max", "recognisable", "recall", "coverage")
HEADLINE_STUDY = ("kl", "recon_mse", "mig", "dci", "factor_vae")
SAMPLER_TITLES = {
    "prior": "prior N(0, I)",
    "gmm": "Gaussian mixture on training codes",
    "two_stage": "second-stage VAE on training codes",
}
# The numbers of one shapes model that go into metrics_beta.json (its eval JSON keeps the matrices
# and per-path values).
SUMMARY_KEYS = (
    "recon_mse",
    "kl",
    "kl_per_dim",
    "active_units",
    "latent_dim",
    "mig",
    "mig_per_factor",
    "dci",
    "dci_completeness",
    "dci_informativeness",
    "factor_vae",
    "factor_dims",
    "gaussian_tc",
    "prior_nn_mse",
    "prior_relative_error",
    "midpoint_relative_error",
    "path_max_over_mean",
    "path_mean_step",
    "midpoint_nn_mse",
    "neg_elbo",
    "bpd",
    "sample_sharpness",
    "beta",
    "epochs",
)


def relative(path: Path) -> str:
    """A path under reports/ as the Markdown files there link to it."""
    return Path(path).relative_to(store.REPORTS).as_posix()


def beta_key(beta: float) -> str:
    """How a beta names its entry of metrics_beta.json: 1.0 -> "1", 2.5 -> "2.5"."""
    return f"{beta:g}"


def read_eval(run: str) -> dict:
    return store.read_json(store.eval_path(run), stage_name("evaluate", run))


def load_run_model(run: str, device: torch.device):
    return store.load_model(store.model_dir(run), device)[0]


def one_dataset(params: dict, runs: list[str], where: str) -> str:
    """The dataset every run of `runs` trained on; a comparison across datasets is refused."""
    names = {run: run_config(params, run)["dataset"] for run in runs}
    if len(set(names.values())) != 1:
        raise VaelabError(
            f"{where} mixes datasets ({', '.join(f'{r}: {d}' for r, d in names.items())}); list "
            "runs of one dataset there in params.yaml"
        )
    return next(iter(names.values()))


def require_objective(params: dict, run: str, objective: str, where: str) -> dict:
    config = run_config(params, run)
    if config["objective"] != objective:
        raise VaelabError(
            f"{where} names {run}, whose objective is {config['objective']}, where a run of "
            f"objective {objective} belongs; fix it in params.yaml"
        )
    return config


# --- sample quality ------------------------------------------------------------------------------


def split_test_set(count: int) -> tuple[slice, slice]:
    """(real, scored) halves of the test set, which the judge never trained on: the first half is
    the real-image statistics every row's fd_clf and precision/recall are measured against; the
    second is what the real-image reference rows and the reconstructions are made of. No image is
    both, and no test label fits anything (the judge's temperature comes from its training
    holdout)."""
    if count < 4:
        raise VaelabError(
            f"the test set has {count} images; the sample-quality comparison needs at least 4 "
            "(half are the real statistics, half are scored): raise datasets.<name>.test_limit"
        )
    half = count // 2
    return slice(0, half), slice(half, count)


def reference_images(images: torch.Tensor, seed: int, blur_sigma: float) -> dict[str, torch.Tensor]:
    """The reference rows from real test images (uint8 NHWC): as they are, blurred (sigma
    `blur_sigma`, the floor a blurry model can reach, and 2 px), sampled down x4 and up again, and
    noise of their shape. Every row but noise keeps the images' labels."""
    real = datasets.to_display(images)
    generator = torch.Generator().manual_seed(seed)
    return {
        "real_test": real,
        "blurred": datasets.blur(real, blur_sigma),
        "blurred_s2": datasets.blur(real, 2.0),
        "down_up_x4": datasets.down_up(real, 4),
        "noise": (0.5 + 0.25 * torch.randn(real.shape, generator=generator)).clamp_(0, 1),
    }


def inception_fid(weights: str | None, real: torch.Tensor, fake: torch.Tensor) -> float | None:
    """True Inception FID, only when the user has the weights on disk (nothing is downloaded)."""
    if not weights:
        return None
    if not Path(weights).is_file():
        print(
            f"note: compare.sample_quality.inception_weights {weights} does not exist; Inception "
            "FID skipped"
        )
        return None
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance

        metric = FrechetInceptionDistance(
            feature=2048, normalize=True, feature_extractor_weights_path=weights
        )
    except (ModuleNotFoundError, RuntimeError, OSError) as e:
        print(f"note: Inception FID skipped ({e}); pip install torch-fidelity to enable it")
        return None
    for images, is_real in ((real, True), (fake, False)):  # each set whole, whatever its size
        for start in range(0, len(images), 250):
            metric.update(images[start : start + 250], real=is_real)
    return float(metric.compute())


class Judge:
    """The classifier run as a scorer: every image set is compared with real test images (uint8
    NHWC `real`); its probabilities are temperature-scaled on the labelled training images the
    judge was kept from (`holdout`, `holdout_labels`)."""

    def __init__(
        self,
        classifier,
        real: torch.Tensor,
        holdout: torch.Tensor,
        holdout_labels: torch.Tensor,
        classes: list[str],
        device: torch.device,
        batch_size: int,
        nearest_k: int = 5,
    ):
        self.classifier, self.classes = classifier, classes
        self.device, self.batch_size, self.nearest_k = device, batch_size, nearest_k
        real = datasets.to_display(real)
        self.real_features, _ = self.classify(real)
        self.real_sharpness = sharpness(real)
        _, logits = self.classify(datasets.to_display(holdout))
        self.temperature = fit_temperature(logits, holdout_labels)
        self.accuracy = float((logits.argmax(1) == holdout_labels).float().mean())

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return classify_batches(self.classifier, images, self.device, self.batch_size)

    def scaled_logits(self, images: torch.Tensor) -> torch.Tensor:
        return self.classify(images)[1] / self.temperature

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """float (N, C, H, W) in [0, 1] -> fd_clf, is_clf, recognisability, sharpness vs real; with
        the images' (N,) labels, the judge's accuracy on them too."""
        features, logits = self.classify(images)
        row = quality_row(
            self.real_features, features, logits, self.classes, self.temperature, self.nearest_k
        )
        row["sharpness"] = sharpness(images) / self.real_sharpness
        if labels is not None:
            row["accuracy"] = float((logits.argmax(1) == labels).float().mean())
        return row


def judge_run(
    run: str,
    judge: Judge,
    dataset: dict,
    train_pixels: torch.Tensor,
    scored: torch.Tensor,
    scored_labels: torch.Tensor,
    config: dict,
    device: torch.device,
) -> tuple[dict, dict]:
    """One VAE's samples (per sampler) and reconstructions of the scored test images, judged; the
    fitted mixture is saved to models/samplers/<run>.npz. Returns (numbers, figure paths)."""
    model = load_run_model(run, device)
    seed, batch, count = config["seed"], config["batch_size"], config["sample_count"]
    train_codes, _ = encode_batches(model, dataset["x_train"], device, batch, seed)
    gmm = fit_latent_gmm(train_codes, config["gmm_components"], seed, config["gmm_covariance"])
    store.write_npz(SAMPLERS_DIR / f"{run}.npz", **gmm)
    second_stage = None
    if "two_stage" in config["samplers"]:
        second_stage = fit_second_stage(
            train_codes, seed, config["second_stage_hidden"], config["second_stage_epochs"]
        )
    codes = {}
    for sampler in config["samplers"]:
        for tau in config["temperatures"] if sampler in TEMPERED else [1.0]:
            codes[sampler_name(sampler, tau)] = sample_codes(
                sampler, count, model.latent_dim, seed, gmm, second_stage, tau
            )
    samples = {sampler: decode_batches(model, z, device, batch) for sampler, z in codes.items()}
    reconstructions = judge(reconstruct_batches(model, scored, device, batch), scored_labels)
    # does the code keep the object: the judge's accuracy on the decoder means of test images
    reconstructions["class_consistency"] = reconstructions["accuracy"]
    row = {
        "samplers": {sampler: judge(images) for sampler, images in samples.items()},
        "reconstructions": reconstructions,
    }
    fid = inception_fid(config["inception_weights"], datasets.to_display(scored), samples["prior"])
    if fid is not None:
        row["inception_fid"] = fid

    out = store.figures_dir("sample_quality")
    figures = {
        "samples_labelled": out / f"samples_labelled_{run}.png",
        "samplers": out / f"samplers_{run}.png",
        "nearest_training": out / f"nearest_training_{run}.png",
    }
    shown = {sampler: images[:NEAREST_SHOWN] for sampler, images in samples.items()}
    nearest = {
        sampler: datasets.to_display(dataset["x_train"][nearest_index(images, train_pixels)])
        for sampler, images in shown.items()
    }
    plots.plot_nearest_training(shown, nearest, figures["nearest_training"])
    shown = samples[config["figure_sampler"]][:LABELLED_GRID]
    plots.plot_labelled_samples(
        shown,
        judge.scaled_logits(shown),
        judge.classes,
        figures["samples_labelled"],
        f"{run}: samples of the {sampler_title(config['figure_sampler'])}",
    )
    plots.plot_samplers(
        model,
        {sampler_title(sampler): z[:FIGURE_GRID] for sampler, z in codes.items()},
        figures["samplers"],
    )
    return row, {kind: relative(path) for kind, path in figures.items()}


def sampler_title(name: str) -> str:
    """`prior_t0.8` -> "prior N(0, 0.8^2 I)", `gmm_t0.8` -> "Gaussian mixture ..., tau 0.8"; the
    others by SAMPLER_TITLES."""
    sampler, _, tau = name.partition("_t")
    if tau and sampler == "prior":
        return f"prior N(0, {tau}^2 I)"
    return SAMPLER_TITLES[sampler] + (f", tau {tau}" if tau else "")


def sample_quality(params: dict) -> dict:
    """reports/sample_quality.json, reports/figures/sample_quality/, models/samplers/."""
    tracking.check_tracking_server()  # it logs to the runs' MLflow runs at the end: fail now
    where = "compare.sample_quality"
    config = compare_config(params, "sample_quality")
    require_objective(params, config["judge"], "classifier", f"{where}.judge")
    for run in config["runs"]:
        require_objective(params, run, "vae", f"{where}.runs")
    dataset_name = one_dataset(params, [config["judge"], *config["runs"]], where)
    dataset = datasets.load(dataset_name, dataset_config(params, dataset_name))
    if "y_test" not in dataset:
        raise VaelabError(
            f"dataset {dataset_name} has no labels, which the judge needs; compare runs of a "
            "labelled dataset (cifar10) in compare.sample_quality"
        )
    device = resolve_device(params["device"])
    # One sampler setting for the figures and the scores: evaluate.<dataset> draws every run's
    # samples.png, and its mixture (components, covariance) is the one scored here.
    figures_from = evaluate_config(params, dataset_name)
    config = {**config, **{key: figures_from[key] for key in GMM_KEYS}}
    config["figure_sampler"] = sampler_name(figures_from["sampler"], figures_from["temperature"])
    if figures_from["temperature"] not in config["temperatures"]:
        config["temperatures"] = [*config["temperatures"], figures_from["temperature"]]
    if figures_from["sampler"] not in config["samplers"]:
        config["samplers"] = [*config["samplers"], figures_from["sampler"]]
    real, scored = split_test_set(len(dataset["x_test"]))
    x_test = dataset["x_test"]
    holdout = run_config(params, config["judge"])["holdout"]
    if holdout < 2:
        raise VaelabError(
            f"runs.{config['judge']}.holdout is {holdout}: the judge's temperature needs labelled "
            "images it never trained on; set it to e.g. 5000 in params.yaml"
        )
    judge = Judge(
        load_run_model(config["judge"], device),
        x_test[real],
        dataset["x_train"][-holdout:],
        dataset["y_train"][-holdout:],
        dataset["classes"],
        device,
        config["batch_size"],
        config["nearest_k"],
    )
    print(
        f"judge {config['judge']}: accuracy {judge.accuracy:.4f} and temperature "
        f"{judge.temperature:.3f} on its {holdout} held-out training images"
    )

    scored_labels = dataset["y_test"][scored]
    reference = {
        name: judge(images, None if name == "noise" else scored_labels)
        for name, images in reference_images(
            x_test[scored], config["seed"], config["blur_sigma"]
        ).items()
    }
    print(
        "judge on the scored test half: "
        + ", ".join(
            f"{name} accuracy {row['accuracy']:.3f}"
            for name, row in reference.items()
            if "accuracy" in row
        )
        + f"; noise confident share {reference['noise']['recognisable']:.3f}"
    )
    runs, figures = {}, {}
    train_pixels = reference_pixels(dataset["x_train"])  # (N, C*H*W) on the decoder's scale
    for run in config["runs"]:
        runs[run], figures[run] = judge_run(
            run, judge, dataset, train_pixels, x_test[scored], scored_labels, config, device
        )
        print(
            f"{run}: "
            + ", ".join(
                f"{s} fd_clf {r['fd_clf']:.2f} recognisable {r['recognisable']:.3f}"
                for s, r in runs[run]["samplers"].items()
            )
            + f", reconstructions fd_clf {runs[run]['reconstructions']['fd_clf']:.2f}"
        )
        tracking.log_final(run, {"sample_quality": runs[run]})
    tracking.log_final(
        config["judge"],
        {"judge": {"temperature": judge.temperature, "calibration_accuracy": judge.accuracy}},
    )
    if not config["inception_weights"]:
        print(
            "note: true Inception FID skipped: set compare.sample_quality.inception_weights to a "
            "local weights file (and pip install torch-fidelity) to compute it"
        )
    result = {
        "judge": config["judge"],
        "judge_accuracy": judge.accuracy,
        "temperature": judge.temperature,
        "calibration_images": holdout,  # training images the judge never saw
        "real_images": real.stop,
        "scored_images": scored.stop - scored.start,
        "sample_count": config["sample_count"],
        "samplers": config["samplers"],
        "temperatures": config["temperatures"],
        "gmm_components": config["gmm_components"],
        "gmm_covariance": config["gmm_covariance"],
        "figure_sampler": config["figure_sampler"],
        "nearest_k": config["nearest_k"],
        "blur_sigma": config["blur_sigma"],
        "reference": reference,
        "runs": runs,
        "figures": figures,
    }
    store.write_json(SAMPLE_QUALITY, result)
    store.write_json(store.headline_path("sample_quality"), quality_headline(result))
    return result


def quality_headline(result: dict) -> dict:
    """The DVC metrics of sample_quality: fd_clf, precision and recall per run and sampler, the
    reference rows' fd_clf and the judge's held-out accuracy (sample_quality.json has the rest)."""
    return {
        "judge_holdout_accuracy": result["judge_accuracy"],
        "reference_fd_clf": {name: row["fd_clf"] for name, row in result["reference"].items()},
        "judge_accuracy": {
            name: row["accuracy"] for name, row in result["reference"].items() if "accuracy" in row
        },
        "reconstruction_class_consistency": {
            run: row["reconstructions"]["class_consistency"] for run, row in result["runs"].items()
        },
        **{
            run: {
                sampler: {key: scores[key] for key in HEADLINE_QUALITY}
                for sampler, scores in row["samplers"].items()
            }
            for run, row in result["runs"].items()
        },
    }


# --- beta study ----------------------------------------------------------------------------------


def compared_labels(labels: list[str]) -> tuple[str, str]:
    """The two betas the autoencoder is compared with: the lowest, and 5 (the assignment's) when in
    the sweep, else the highest."""
    by_value = sorted(labels, key=float)
    high = next((label for label in by_value if float(label) == 5.0), by_value[-1])
    return by_value[0], high


def shapes_summary_row(metrics: dict) -> dict:
    return {key: metrics[key] for key in SUMMARY_KEYS if key in metrics}


def shapes_runs(params: dict, config: dict) -> dict[str, list[str]]:
    """{beta label: its runs (one per seed)} of the shapes sweep, lowest beta first; betas from the
    runs' configs. Every beta needs the same seeds, or their spreads would not compare."""
    out: dict[str, list[str]] = {}
    seeds: dict[str, list[int]] = {}
    for run in config["runs"]:
        config_of_run = require_objective(params, run, "vae", "compare.beta_study.runs")
        label = beta_key(config_of_run["beta"])
        out.setdefault(label, []).append(run)
        seeds.setdefault(label, []).append(config_of_run["seed"])
    if len({tuple(sorted(s)) for s in seeds.values()}) > 1 or any(
        len(set(s)) != len(s) for s in seeds.values()
    ):
        listed = "; ".join(f"beta {label}: seeds {sorted(s)}" for label, s in seeds.items())
        fail(
            "compare.beta_study.runs",
            f"must hold every beta with the same distinct seeds, got {listed}",
        )
    return dict(sorted(out.items(), key=lambda item: float(item[0])))


def cifar_pair(params: dict, config: dict, key: str, device: torch.device) -> dict[str, dict]:
    """The CIFAR-10 beta pair `compare.beta_study.<key>` as `cifar_entries`, or {} when the key is
    absent (the fixed-scale pair is optional)."""
    where = f"compare.beta_study.{key}"
    pair = config.get(key)
    if pair is None:
        return {}
    if not isinstance(pair, list) or len(pair) != 2 or any(r not in params["runs"] for r in pair):
        fail(where, f"must name two runs of runs, got {pair!r}")
    for run in pair:
        require_objective(params, run, "vae", where)
    entries = cifar_entries(
        {run: read_eval(run) for run in pair},
        {run: run_config(params, run)["beta"] for run in pair},
        cifar_total_correlations(params, pair, config["cifar_codes"], device),
        where,
    )
    for entry in entries.values():
        likelihood = run_config(params, entry["model"])["model"]["likelihood"]
        entry["likelihood"], entry["likelihood_sigma"] = likelihood["kind"], likelihood.get("sigma")
    return entries


def cifar_entries(
    evals: dict[str, dict],
    betas: dict[str, float],
    total_correlations: dict[str, float],
    where: str = "compare.beta_study.cifar_pair",
) -> dict[str, dict]:
    """The CIFAR-10 pair's evaluations keyed by their beta, in the shape of the shapes rows, with
    the decoder's last sigma from the training curves: learned, or the fixed one (a fixed-scale
    Gaussian records its constant sigma); null for the logistic mixture, whose scale is per
    pixel."""
    out = {}
    for name, m in evals.items():
        key = beta_key(betas[name])
        if key in out:
            raise VaelabError(
                f"{' and '.join(evals)} both have beta = {key}; the beta study compares two betas, "
                f"so give {where} runs of different runs.<name>.beta"
            )
        curves = store.read_curves(store.curves_path(name))
        sigma = curves[-1].get("decoder_sigma") if curves else None
        out[key] = {
            "model": name,
            "recon_mse": m["test_recon_mse"],
            "kl": m["test_kl"],
            "kl_per_dim": m["kl_per_dim"],
            "active_units": m["active_units"],
            "latent_dim": m["latent_dim"],
            "gaussian_tc": total_correlations[name],
            "bpd": m["test_bpd"],
            "sample_sharpness": m["sample_sharpness"],
            "beta": betas[name],
            "epochs": m.get("epochs"),
            "decoder_sigma": sigma if sigma == sigma else None,  # NaN in the CSV = no sigma
        }
    return dict(sorted(out.items(), key=lambda item: float(item[0])))


def cifar_total_correlations(
    params: dict, pair: list[str], count: int, device: torch.device
) -> dict[str, float]:
    """Gaussian total correlation of each model's codes of the first `count` test images."""
    name = one_dataset(params, pair, "compare.beta_study.cifar_pair")
    images = datasets.load(name, dataset_config(params, name))["x_test"][:count]
    return {
        run: gaussian_total_correlation(
            *encode_batches(load_run_model(run, device), images, device)
        )
        for run in pair
    }


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


def best_beta(spreads: dict[str, dict]) -> str:
    """The beta label whose seeds' mean six-factor MIG is highest."""
    return max(spreads, key=lambda label: spreads[label]["mig"]["mean"])


def draw_beta_figures(
    study: dict,
    paths_of: dict,
    ae_paths: dict,
    models: dict,
    pair: torch.Tensor,
    settings: dict,
    seed: int,
) -> dict[str, str]:
    """`paths_of`: per beta label, the interpolation paths of all its seeds (as the evaluations
    hold them); `ae_paths` the autoencoders'."""
    out = store.figures_dir("beta_study")
    paths = {
        "beta_sweep": out / "beta_sweep.png",
        "beta_tradeoff": out / "beta_tradeoff.png",
        "interpolation_smoothness": out / "interpolation_smoothness.png",
        "autoencoder_vs_vae": out / "autoencoder_vs_vae_shapes.png",
    }
    plot_sweep(
        study["shapes_spread"],
        study["autoencoder_spread"],
        study["factor_information_nats"],
        paths["beta_sweep"],
    )
    plots.plot_beta_tradeoff(
        study["shapes"], study["cifar10"], study["shapes_autoencoder"], paths["beta_tradeoff"]
    )
    plots.plot_smoothness(
        {"autoencoder": ae_paths, **{f"beta = {label}": row for label, row in paths_of.items()}},
        paths["interpolation_smoothness"],
    )
    plots.plot_autoencoder_vs_vae(
        models, pair, paths["autoencoder_vs_vae"], steps=settings["path_steps"], seed=seed
    )
    return {key: relative(path) for key, path in paths.items()}


def pooled_paths(evals: list[dict]) -> dict[str, list[float]]:
    """The interpolation paths of several seeds as one set (plots.plot_smoothness's input)."""
    return {
        key: [value for m in evals for value in m[key]]
        for key in ("path_ratios", "path_mean_steps")
    }


def study_headline(study: dict) -> dict:
    """The DVC metrics of beta_study: per beta (and the autoencoder) the seeds' means of the KL,
    reconstruction MSE and disentanglement scores (metrics_beta.json has spreads and the rest)."""
    groups = {f"beta_{label}": stats for label, stats in study["shapes_spread"].items()}
    groups["autoencoder"] = study["autoencoder_spread"]
    return {
        name: {key: stats[key]["mean"] for key in HEADLINE_STUDY if key in stats}
        for name, stats in groups.items()
    }


def beta_study(params: dict) -> dict:
    """reports/metrics_beta.json, reports/theory.md, reports/figures/beta_study/."""
    tracking.check_tracking_server()  # it logs to an MLflow run at the end: fail now
    config = compare_config(params, "beta_study")
    device, seed = resolve_device(params["device"]), config["seed"]
    runs = shapes_runs(params, config)
    autoencoder = config["autoencoder"]
    autoencoders = config["autoencoders"]
    for run in autoencoders:
        require_objective(params, run, "ae", "compare.beta_study.autoencoders")
    every_run = [run for group in runs.values() for run in group]
    shapes_name = one_dataset(
        params, [*every_run, *autoencoders], "compare.beta_study (runs and autoencoders)"
    )
    settings = evaluate_config(params, shapes_name)
    evals = {run: read_eval(run) for run in [*every_run, *autoencoders]}
    seed_rows = {
        label: [shapes_summary_row(evals[run]) for run in group] for label, group in runs.items()
    }
    ae_rows = [shapes_summary_row(evals[run]) for run in autoencoders]
    pair = list(config["cifar_pair"])
    cifar = cifar_pair(params, config, "cifar_pair", device)
    cifar_fixed = cifar_pair(params, config, "cifar_fixed_pair", device)

    dataset = datasets.load(shapes_name, dataset_config(params, shapes_name))
    low, high = compared_labels(list(runs))
    shown = {label: group[0] for label, group in runs.items()}  # the first seed's, in figures
    low_model = load_run_model(shown[low], device)
    active = evals[shown[low]]["active_dims"]
    gradient = None
    if active:
        gradient = estimator_variances(
            low_model,
            dataset["x_test"][: config["gradient_images"]],
            active,
            config["gradient_samples"],
            seed,
        )
        gradient["beta"] = low
    likelihood = run_config(params, shown[low])["model"]["likelihood"]
    spreads = {label: spread(rows) for label, rows in seed_rows.items()}
    ae_spread = spread(ae_rows)
    trained = {
        run: convergence(params, run, len(dataset["x_train"]))
        for run in [*every_run, *autoencoders]
    }
    study = {
        "shapes": {
            label: mean_row(rows, runs[label], spreads[label]) for label, rows in seed_rows.items()
        },
        "shapes_spread": spreads,
        "shapes_autoencoder": mean_row(ae_rows, autoencoders, ae_spread),
        "autoencoder_spread": ae_spread,
        # per beta: each factor's MIG, DCI completeness and accuracy, and the latent carrying it
        "factors": {
            label: factor_spread([evals[run] for run in group]) for label, group in runs.items()
        },
        "autoencoder_factors": factor_spread([evals[run] for run in autoencoders]),
        "best_beta": best_beta(spreads),
        # optimiser steps per beta (every seed trains alike), and every run's convergence
        "steps": {
            **{label: trained[group[0]]["steps"] for label, group in runs.items()},
            "autoencoder": trained[autoencoders[0]]["steps"],
        },
        "convergence": trained,
        "factor_information_nats": factor_information(
            np.concatenate(
                [np.asarray(dataset["factors_train"]), np.asarray(dataset["factors_test"])]
            )
        ),
        "likelihood": likelihood["kind"],
        "likelihood_sigma": likelihood.get("sigma"),
        "cifar10": cifar,
        "cifar10_fixed_scale": cifar_fixed,
        "reparameterization": gradient,
        "runs": {
            "shapes": runs,
            "autoencoder": autoencoder,
            "autoencoders": autoencoders,
            "cifar10": pair,
            "cifar10_fixed_scale": list(config.get("cifar_fixed_pair", [])),
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
    study["figures"] = draw_beta_figures(
        study,
        {label: pooled_paths([evals[run] for run in group]) for label, group in runs.items()},
        pooled_paths([evals[run] for run in autoencoders]),
        models,
        dataset["x_test"][order[:2]],
        settings,
        seed,
    )
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
