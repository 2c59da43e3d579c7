"""The `evaluate@<run>` and `evaluate_sweep@<sweep>` stages: reports/eval/<run>.json, its headline
as DVC metrics (a sweep's: their mean and std over its seeds), reports/figures/<run>/, all added to
the run's MLflow run. What is measured follows from the run's objective (classifier, vae, ae: the
VAE network with z = mu and no KL) and from known factors in its dataset (`factor_metrics`).
Numbers judged by the CIFAR-10 classifier are cross-run: quality.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from . import datasets, parallel, plots, store
from .config import dataset_config, run_config, stage_name, sweep_of, sweep_runs
from .datasets import to_display
from .datasets.shapes import FACTOR_LABELS
from .errors import VaelabError
from .losses import kl_to_standard_normal
from .metrics.disentanglement import (
    best_factor_per_dim,
    factor_vae_score,
    gaussian_total_correlation,
    mig,
)
from .metrics.latent import interpolate, interpolation_smoothness, reference_pixels
from .metrics.likelihood import active_mask, autoencoder_metrics, elbo_metrics
from .metrics.sample_quality import fit_latent_gmm, relative_nearest_error, sample_codes, sharpness
from .models import classify_batches, decode_batches, encode_batches
from .runtime import autocast, resolve_device, use_mixed_precision_in_evaluation
from .sweep import spread, study_row

# A run's DVC metrics (reports/metrics/<run>.json), few so that `dvc metrics show` and `dvc exp
# show` stay readable; the rest is in reports/eval/<run>.json. No key is named like a param.
SUMMARY_KEYS = (
    "test_accuracy",
    "test_neg_elbo",
    "test_bpd",
    "test_recon_mse",
    "test_kl",
    "active_units",
    "mig",
    "factor_vae",
)


def headline(metrics: dict) -> dict:
    return {key: metrics[key] for key in SUMMARY_KEYS if key in metrics}


def sweep_headline(runs_metrics: list[dict]) -> dict:
    """{"mean": {key: ...}, "std": {key: ...}} of sweep.SPREAD_KEYS over a sweep's seeds."""
    summary = spread([study_row(metrics) for metrics in runs_metrics])
    return {stat: {key: s[stat] for key, s in summary.items()} for stat in ("mean", "std")}


def evaluate_stage(params: dict, name: str) -> None:
    """`evaluate@<run>`, or `evaluate_sweep@<sweep>`: every seed's run side by side
    (parallel.run_each), then the sweep's headline over its seeds."""
    runs = sweep_runs(params, name)
    if runs is None and sweep_of(name) is None:
        store.write_json(store.headline_path(name), headline(evaluate_run(params, name)))
        return
    if runs is None:  # one seed of a sweep alone: still one thread, as in its sweep
        parallel.run_each(evaluate_run, params, [name])
        return
    from . import tracking  # noqa: F401  imported once here, inherited by each forked run

    evaluated = parallel.run_each(evaluate_run, params, runs)
    store.write_json(store.headline_path(name), sweep_headline([evaluated[r] for r in runs]))


@dataclass
class Evaluation:
    """What every part of one run's evaluation reads."""

    name: str
    model: torch.nn.Module
    dataset: dict
    settings: dict  # evaluate.<dataset> of params.yaml
    device: torch.device
    figures: Path

    @property
    def seed(self) -> int:
        return self.settings["seed"]

    @property
    def batch(self) -> int:
        return self.settings["batch_size"]


def evaluate_run(params: dict, name: str) -> dict:
    """Measure the trained run `name`; write and return the numbers of reports/eval/<name>.json
    (its figures in reports/figures/<name>/, its final numbers in its MLflow run)."""
    from . import tracking  # imports mlflow: only when the stage runs

    tracking.check_tracking_server()  # the numbers go to MLflow at the end: fail before the work
    run = run_config(params, name)
    dataset_name, objective = run["dataset"], run["objective"]
    device = resolve_device(params["device"])
    dataset = datasets.load(dataset_name, dataset_config(params, dataset_name))
    model, model_config = store.load_model(store.model_dir(name), device)
    if model_config["objective"] != objective:  # a model left by other params
        retrain = f"retrain it (dvc repro {stage_name('train', name)})"
        raise VaelabError(f"models/{name} was trained as {model_config['objective']}; {retrain}")
    settings = params["evaluate"][dataset_name]
    ev = Evaluation(name, model, dataset, settings, device, store.figures_dir(name))
    ev.figures.mkdir(parents=True, exist_ok=True)
    plots.plot_curves({name: store.read_curves(store.curves_path(name))}, ev.figures / "curves.png")

    metrics: dict = {
        "run": name,
        "dataset": dataset_name,
        "objective": objective,
        "arch": run["model"]["arch"],
        "test_images": len(dataset["x_test"]),
    }
    # No timings here: same params, seed and threads give an identical file (timings are in the
    # curves' epoch_seconds). On a GPU the networks run in half precision as in training; the
    # likelihood and the KL are still summed in fp32 (losses.py), so bits/dim keeps its precision.
    epochs = model_config["epochs_trained"]
    with autocast(device, use_mixed_precision_in_evaluation(run["mixed_precision"], device)):
        if objective == "classifier":
            metrics.update(classifier_metrics(ev), epochs=epochs)
        else:
            beta = model_config.get("beta", run["beta"])
            metrics.update(code_metrics(ev, objective), epochs=epochs, beta=beta)

    store.write_json(store.eval_path(name), metrics)
    tracking.log_final(name, metrics, ev.figures)
    print(f"{name}: " + ", ".join(f"{k} {v:.4g}" for k, v in headline(metrics).items()))
    return metrics


def classifier_metrics(ev: Evaluation) -> dict:
    """Test accuracy (flip-averaged logits, as the judge scores samples) overall and per class."""
    labels, classes = ev.dataset["y_test"], ev.dataset["classes"]
    _, logits = classify_batches(ev.model, to_display(ev.dataset["x_test"]), ev.device, ev.batch)
    predictions = logits.argmax(dim=1)
    per_class = {
        c: float((predictions[labels == k] == k).float().mean())
        for k, c in enumerate(classes)
        if (labels == k).any()
    }
    return {
        "test_accuracy": float((predictions == labels).float().mean()),
        "per_class_accuracy": per_class,
    }


def code_metrics(ev: Evaluation, objective: str) -> dict:
    """A VAE's or an autoencoder's numbers and figures, with factor_metrics on factor data."""
    model, x_test = ev.model, ev.dataset["x_test"]
    # (N, latent) each; the same dequantisation noise as elbo_metrics below
    test_mu, test_logvar = encode_batches(model, x_test, ev.device, ev.batch, ev.seed)
    picks = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(ev.seed))[:8]
    plots.plot_reconstructions({ev.name: model}, x_test[picks], ev.figures / "reconstructions.png")
    if objective == "ae":
        recon = autoencoder_metrics(model, x_test, ev.device, ev.batch, ev.seed)
        out = {
            "test_recon_nll": recon["recon"],
            "test_recon_mse": recon["mse"],
            "latent_dim": model.latent_dim,
        }
    else:
        out = vae_metrics(ev, test_mu, test_logvar)
    if "factors_test" in ev.dataset:
        out.update(factor_metrics(ev, objective == "ae", test_mu, test_logvar))
    if objective == "vae":
        draw_vae_figures(ev, out, x_test[picks[0]], figure_codes(ev), pair_labels(ev.dataset))
    return out


def vae_metrics(ev: Evaluation, test_mu: torch.Tensor, test_logvar: torch.Tensor) -> dict:
    """Test ELBO terms (one z per image), KL per dim, active units, and the sharpness of decoded
    prior samples relative to as many real test images."""
    model, x_test = ev.model, ev.dataset["x_test"]
    active = active_mask(test_mu, ev.settings["active_threshold"])
    elbo = elbo_metrics(model, x_test, ev.device, beta=1.0, batch_size=ev.batch, seed=ev.seed)
    prior = sample_codes("prior", len(x_test), model.latent_dim, ev.seed)
    samples = decode_batches(model, prior, ev.device, ev.batch)
    return {
        "test_neg_elbo": elbo["neg_elbo"],
        "test_bpd": elbo["bpd"],
        "test_recon_nll": elbo["recon"],
        "test_recon_mse": elbo["mse"],
        "test_kl": elbo["kl"],
        "active_units": int(active.sum()),
        "latent_dim": model.latent_dim,
        "active_dims": active.nonzero().flatten().tolist(),
        "kl_per_dim": kl_to_standard_normal(test_mu, test_logvar).mean(dim=0).tolist(),
        "sample_sharpness": sharpness(samples) / sharpness(to_display(x_test)),
    }


def figure_codes(ev: Evaluation) -> torch.Tensor:
    """The 16 codes of samples.png from evaluate.<dataset>'s sampler, one for every run so that the
    runs' figures compare: N(0, I) or a Gaussian mixture fitted to the training codes
    (compare.sample_quality scores the same sampler among others)."""
    model, settings = ev.model, ev.settings
    sampler, gmm = settings.get("sampler", "prior"), None
    if sampler == "gmm":
        codes, _ = encode_batches(model, ev.dataset["x_train"], ev.device, ev.batch, ev.seed)
        gmm = fit_latent_gmm(codes, settings["gmm_components"], ev.seed, settings["gmm_covariance"])
    return sample_codes(sampler, 16, model.latent_dim, ev.seed, gmm)


def pair_labels(dataset: dict) -> tuple[torch.Tensor | None, list[str] | None]:
    """What interpolation pairs differ in: the class (labelled data), Smiling (faces with
    attributes) or nothing (None, None)."""
    names = dataset.get("attribute_names", [])
    if "y_test" not in dataset and "Smiling" in names:
        smiling = dataset["attributes_test"][:, names.index("Smiling")] > 0
        return smiling.long(), ["not smiling", "smiling"]
    return dataset.get("y_test"), dataset.get("classes")


def draw_vae_figures(
    ev: Evaluation, metrics: dict, image: torch.Tensor, codes: torch.Tensor, pairs: tuple
) -> None:
    """samples.png (`codes` decoded), interpolations between prior codes and between test images
    (of different labels: `pairs` is pair_labels'), and traversals around `image`."""
    model, settings = ev.model, ev.settings
    labels, classes = pairs
    steps, span = settings["interpolation_steps"], settings["traversal_span"]
    generator = torch.Generator().manual_seed(ev.seed)
    plots.save_samples(model, codes, ev.figures / "samples.png")
    path = ev.figures / "interpolation_prior.png"
    plots.plot_prior_interpolation(model, generator, path, steps=steps)
    path = ev.figures / "interpolation_images.png"
    x_test = ev.dataset["x_test"]
    plots.plot_image_interpolation(model, x_test, labels, classes, generator, path, steps=steps)
    dim_factor, what = metrics.get("dim_factor"), "its mean KL on the test set"
    if dim_factor is not None:
        what = "the factor it shares most information with (normalised MI)"
    dims, rows = traversal_rows(
        metrics["kl_per_dim"], metrics["active_dims"], settings["traversal_dims"], dim_factor
    )
    plots.plot_traversals(
        model,
        image,
        dims,
        rows,
        ev.figures / "traversals.png",
        span=span,
        steps=settings.get("traversal_steps", 9),
        title=f"{ev.name}: each row one latent dim from -{span:g} to +{span:g}; label: {what}",
    )


def traversal_rows(
    kl_per_dim: list[float],
    active_dims: list[int],
    count: int,
    dim_factor: list[dict] | None = None,
) -> tuple[list[int], list[str]]:
    """The dims to traverse (active ones, most KL first, at most `count`; the three highest-KL
    dims when none is active) and each row's label: the dim, its KL, and with `dim_factor` the
    factor it shares the most information with."""
    by_kl = sorted(range(len(kl_per_dim)), key=lambda j: -kl_per_dim[j])
    active = set(active_dims)
    dims = [j for j in by_kl if j in active][:count] or by_kl[: min(3, count)]
    labels = []
    for j in dims:
        label = f"z{j} (KL {kl_per_dim[j]:.2f}{'' if j in active else ', inactive'})"
        if dim_factor is not None:
            factor, share = dim_factor[j]["factor"], dim_factor[j]["normalised_mi"]
            label += f"\n{factor} {share:.2f}" if share > 0 else "\nno factor"
        labels.append(label)
    return dims, labels


def factor_metrics(
    ev: Evaluation, autoencoder: bool, test_mu: torch.Tensor, test_logvar: torch.Tensor
) -> dict:
    """Every number of a model against the dataset's factors: the codes (posterior means) of
    `code_count` training images fit MIG; the FactorVAE score votes on the test split."""
    model, dataset, settings = ev.model, ev.dataset, ev.settings
    names = [FACTOR_LABELS.get(n, n) for n in dataset["factor_names"]]
    x_train, x_test = dataset["x_train"], dataset["x_test"]
    generator = torch.Generator().manual_seed(ev.seed)
    pick = torch.randperm(len(x_train), generator=generator)[: settings["code_count"]]
    train_mu, _ = encode_batches(model, x_train[pick], ev.device, ev.batch)
    active = active_mask(test_mu, settings["active_threshold"])

    # Scores use the dims the decoder can read. An inactive VAE dim's mean moves by less than a
    # tenth of its posterior noise (std ~1), yet binning that tiny range can find "information"
    # that never reaches the decoder, so those dims are held constant. The autoencoder's code has
    # no noise and an arbitrary scale: all of it counts.
    ignored = torch.zeros_like(active) if autoencoder else ~active
    train_codes = train_mu.masked_fill(ignored, 0.0).numpy()
    test_codes = test_mu.masked_fill(ignored, 0.0).numpy()
    train_factors = dataset["factors_train"][pick].numpy()
    test_factors = dataset["factors_test"].numpy()
    gap = mig(train_codes, train_factors, settings["mi_bins"])
    votes = factor_vae_score(test_codes, test_factors, seed=ev.seed)
    out = {
        "autoencoder": autoencoder,
        "code_images": len(pick),
        "active_units": int(active.sum()),
        "active_dims": active.nonzero().flatten().tolist(),
        "mig": gap["mig"],
        "mig_per_factor": dict(zip(names, gap["per_factor"], strict=True)),
        "factor_vae": votes["factor_vae"],
        "factor_vae_voting_dims": votes["voting_dims"],
        "dim_factor": best_factor_per_dim(gap["normalised_mi"], names),
        "normalised_mi": gap["normalised_mi"],
        "gaussian_tc": gaussian_total_correlation(test_mu, None if autoencoder else test_logvar),
    }

    steps = settings["path_steps"]
    ends = torch.randint(len(x_test), (settings["paths"], 2), generator=generator)
    starts, stops = test_mu[ends[:, 0]], test_mu[ends[:, 1]]
    out.update(interpolation_smoothness(model, starts, stops, steps, ev.batch))
    # Prior samples and the paths' midpoints against the nearest training image, scored relative to
    # a blank image so that a blank image cannot win.
    reference = reference_pixels(x_train)
    prior = sample_codes("prior", settings["prior_samples"], model.latent_dim, ev.seed)
    midpoints = interpolate(starts, stops, steps)[:, steps // 2]
    for key, codes in (("prior", prior), ("midpoint", midpoints)):
        decoded = decode_batches(model, codes, ev.device, ev.batch)
        out[f"{key}_relative_error"] = relative_nearest_error(decoded, reference)
    return out
