"""The `sample_quality` stage: per CIFAR-10 VAE, samples of each sampler (the prior, a mixture fitted
to the training codes) and reconstructions scored by the judge (`compare.sample_quality.judge`),
beside reference rows (real, blurred, noise) that show what the numbers mean."""

from __future__ import annotations

import torch

from . import datasets, store, study_plots, tracking
from .compare import SAMPLE_QUALITY, load_run_model, relative
from .config import GMM_KEYS, dataset_config, run_config
from .errors import VaelabError
from .metrics.sample_quality import (
    fit_latent_gmm,
    fit_temperature,
    frechet_distance,
    recognisability,
    sample_codes,
    sharpness,
)
from .models import classify_batches, decode_batches, encode_batches, reconstruct_batches
from .runtime import resolve_device

LABELLED_GRID = 64  # the 8x8 labelled-samples figure
SAMPLER_TITLES = {"prior": "prior N(0, I)", "gmm": "Gaussian mixture on training codes"}
HEADLINE_QUALITY = ("fd_clf", "class_min", "class_max", "recognisable")
# The settings sample_quality.json records, in its order.
RECORDED_SETTINGS = ("sample_count", "samplers", *GMM_KEYS, "figure_sampler", "blur_sigma")


def split_test_set(count: int) -> tuple[slice, slice]:
    """(real, scored) halves of the test set: the statistics every row is measured against, and
    what the reference rows and the reconstructions are made of."""
    if count < 4:
        raise VaelabError(
            f"the test set has {count} images; the sample-quality comparison needs at least 4 "
            "(half are the real statistics, half are scored): raise datasets.<name>.test_limit"
        )
    half = count // 2
    return slice(0, half), slice(half, count)


def reference_images(images: torch.Tensor, seed: int, blur_sigma: float) -> dict[str, torch.Tensor]:
    """Test images (uint8 NHWC) as they are, blurred (`blur_sigma`; 2 px), down-up x4, and noise."""
    real = datasets.to_display(images)
    generator = torch.Generator().manual_seed(seed)
    return {
        "real_test": real,
        "blurred": datasets.blur(real, blur_sigma),
        "blurred_s2": datasets.blur(real, 2.0),
        "down_up_x4": datasets.down_up(real, 4),
        "noise": (0.5 + 0.25 * torch.randn(real.shape, generator=generator)).clamp_(0, 1),
    }


class Judge:
    """The classifier as a scorer against uint8 NHWC `real`, calibrated on its `holdout`."""

    def __init__(
        self,
        classifier,
        real: torch.Tensor,
        holdout: torch.Tensor,
        holdout_labels: torch.Tensor,
        classes: list[str],
        device: torch.device,
        batch_size: int,
    ):
        self.classifier, self.classes = classifier, classes
        self.device, self.batch_size = device, batch_size
        real = datasets.to_display(real)
        self.real_features, _ = self.classify(real)
        self.real_sharpness = sharpness(real)
        _, logits = self.classify(datasets.to_display(holdout))
        self.temperature = fit_temperature(logits, holdout_labels)
        self.accuracy = float((logits.argmax(1) == holdout_labels).float().mean())

    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return classify_batches(self.classifier, images, self.device, self.batch_size)

    def __call__(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
        """float (N, C, H, W) in [0, 1] -> fd_clf, recognisability of the calibrated logits,
        sharpness vs real and accuracy on `labels`."""
        features, logits = self.classify(images)
        row = {
            "fd_clf": frechet_distance(self.real_features, features),
            **recognisability(logits / self.temperature, self.classes),
            "sharpness": sharpness(images) / self.real_sharpness,
        }
        if labels is not None:
            row["accuracy"] = float((logits.argmax(1) == labels).float().mean())
        return row


def judge_run(
    run: str, judge: Judge, dataset: dict, scored: slice, config: dict
) -> tuple[dict, dict]:
    """One VAE's samples and reconstructions judged, its mixture saved: (numbers, figure paths)."""
    seed, batch, count = config["seed"], config["batch_size"], config["sample_count"]
    device = judge.device
    model = load_run_model(run, device)
    train_codes, _ = encode_batches(model, dataset["x_train"], device, batch, seed)
    gmm = fit_latent_gmm(train_codes, config["gmm_components"], seed, config["gmm_covariance"])
    store.write_npz(store.MODELS / "samplers" / f"{run}.npz", **gmm)
    codes = {
        sampler: sample_codes(sampler, count, model.latent_dim, seed, gmm)
        for sampler in config["samplers"]
    }
    samples = {sampler: decode_batches(model, z, device, batch) for sampler, z in codes.items()}
    recon = reconstruct_batches(model, dataset["x_test"][scored], device, batch)
    row = {
        "samplers": {sampler: judge(images) for sampler, images in samples.items()},
        # does the code keep the object: the judge's accuracy on the decoder means of test images
        "reconstructions": judge(recon, dataset["y_test"][scored]),
    }
    figure = store.figures_dir("sample_quality") / f"samples_labelled_{run}.png"
    shown = samples[config["figure_sampler"]][:LABELLED_GRID]
    study_plots.plot_labelled_samples(
        shown,
        judge.classify(shown)[1] / judge.temperature,
        judge.classes,
        figure,
        f"{run}: samples of the {SAMPLER_TITLES[config['figure_sampler']]}",
    )
    return row, {"samples_labelled": relative(figure)}


def sample_quality(params: dict) -> dict:
    """reports/sample_quality.json, reports/figures/sample_quality/, models/samplers/."""
    tracking.check_tracking_server()  # it logs to the runs' MLflow runs at the end: fail now
    config = params["compare"]["sample_quality"]
    # config.py checked the runs and the judge: VAEs and a classifier, of one labelled dataset
    dataset_name = run_config(params, config["judge"])["dataset"]
    dataset = datasets.load(dataset_name, dataset_config(params, dataset_name))
    device = resolve_device(params["device"])
    # One sampler setting for the figures and the scores: evaluate.<dataset> draws every run's
    # samples.png, and its mixture (components, covariance) is the one scored here.
    figures_from = params["evaluate"][dataset_name]
    config = {**config, **{key: figures_from[key] for key in GMM_KEYS}}
    config["figure_sampler"] = figures_from["sampler"]
    if figures_from["sampler"] not in config["samplers"]:
        config["samplers"] = [*config["samplers"], figures_from["sampler"]]
    real, scored = split_test_set(len(dataset["x_test"]))
    holdout = run_config(params, config["judge"])["holdout"]
    if holdout < 2:
        raise VaelabError(
            f"runs.{config['judge']}.holdout is {holdout}: the judge's temperature needs labelled "
            "images it never trained on; set it to e.g. 5000 in params.yaml"
        )
    judge = Judge(
        load_run_model(config["judge"], device),
        dataset["x_test"][real],
        dataset["x_train"][-holdout:],
        dataset["y_train"][-holdout:],
        dataset["classes"],
        device,
        config["batch_size"],
    )
    print(
        f"judge {config['judge']}: accuracy {judge.accuracy:.4f} and temperature "
        f"{judge.temperature:.3f} on its {holdout} held-out training images"
    )
    references = reference_images(dataset["x_test"][scored], config["seed"], config["blur_sigma"])
    reference = {
        name: judge(images, None if name == "noise" else dataset["y_test"][scored])
        for name, images in references.items()
    }
    accuracy = {name: row["accuracy"] for name, row in reference.items() if "accuracy" in row}
    runs, figures = {}, {}
    for run in config["runs"]:
        runs[run], figures[run] = judge_run(run, judge, dataset, scored, config)
        scores = ", ".join(
            f"{s} fd_clf {r['fd_clf']:.2f} recognisable {r['recognisable']:.3f}"
            for s, r in runs[run]["samplers"].items()
        )
        recon = runs[run]["reconstructions"]["fd_clf"]
        print(f"{run}: {scores}, reconstructions fd_clf {recon:.2f}")
        tracking.log_final(run, {"sample_quality": runs[run]})
    calibration = {"temperature": judge.temperature, "calibration_accuracy": judge.accuracy}
    tracking.log_final(config["judge"], {"judge": calibration})
    result = {
        "judge": config["judge"],
        "judge_holdout_accuracy": judge.accuracy,
        "temperature": judge.temperature,
        # train.train_run cuts the last `holdout` training images from the judge's: they calibrate it
        "judge_training_images": len(dataset["x_train"]) - holdout,
        "calibration_images": holdout,
        "real_images": real.stop,
        "scored_images": scored.stop - scored.start,
        **{key: config[key] for key in RECORDED_SETTINGS},
        "reference": reference,
        "runs": runs,
        "figures": figures,
    }
    store.write_json(SAMPLE_QUALITY, result)
    # The DVC metrics (sample_quality.json has the rest)
    headline = {
        "judge_holdout_accuracy": judge.accuracy,
        "reference_fd_clf": {name: row["fd_clf"] for name, row in reference.items()},
        "reference_accuracy": accuracy,
        "reconstruction_accuracy": {
            run: row["reconstructions"]["accuracy"] for run, row in runs.items()
        },
        **{
            run: {
                sampler: {key: scores[key] for key in HEADLINE_QUALITY}
                for sampler, scores in row["samplers"].items()
            }
            for run, row in runs.items()
        },
    }
    store.write_json(store.headline_path("sample_quality"), headline)
    return result
