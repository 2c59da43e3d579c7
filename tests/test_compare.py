"""The cross-run comparisons on tiny models and data, in a temporary project folder."""

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import image_cells, write_cifar
from vaelab import betas, datasets, quality, store
from vaelab.errors import VaelabError


def test_test_set_halves_are_disjoint_and_too_small_a_set_is_refused():
    calibration, scored = quality.split_test_set(101)
    assert (calibration.start, calibration.stop, scored.start, scored.stop) == (0, 50, 50, 101)
    with pytest.raises(VaelabError, match="at least 4"):
        quality.split_test_set(3)


def test_reference_rows_are_built_from_the_images_given():
    images = torch.randint(0, 256, (6, 32, 32, 3), dtype=torch.uint8)
    rows = quality.reference_images(images, seed=0, blur_sigma=1.5)
    assert torch.equal(rows["real_test"], datasets.to_display(images))
    assert rows["noise"].shape == rows["blurred"].shape == (6, 3, 32, 32)
    assert rows["blurred"].std() < rows["real_test"].std()  # blur removes the pixel noise


def test_sample_quality_judges_every_run_against_real_test_images(project, figures):
    result = quality.sample_quality(project["params"])
    assert json.loads(Path("reports/sample_quality.json").read_text()) == result
    sizes = ("calibration_images", "real_images", "scored_images", "sample_count")
    assert [result[key] for key in sizes] == [20, 30, 30, 40]
    judged_references = {"real_test", "blurred", "blurred_s2", "down_up_x4"}
    assert set(result["reference"]) == {*judged_references, "noise"}
    assert "accuracy" not in result["reference"]["noise"]
    assert all(
        0 <= row["class_min"] <= row["class_max"] <= 1 for row in result["reference"].values()
    )
    sampler_names = {"prior", "gmm"}
    assert result["figure_sampler"] == "gmm"  # evaluate.cifar10.sampler
    assert result["judge_training_images"] == 48 - 20  # write_cifar's, less the judge's holdout
    assert result["gmm_components"] == 2  # evaluate.cifar10.gmm_components, the one setting
    for run in ("fc", "conv", "conv_beta5"):
        row = result["runs"][run]
        assert set(row["samplers"]) == sampler_names
        assert 0 <= row["reconstructions"]["accuracy"] <= 1
        for judged in (*row["samplers"].values(), row["reconstructions"]):
            assert np.isfinite(judged["fd_clf"]) and judged["sharpness"] > 0
            assert 0 <= judged["recognisable"] <= 1
        gmm = store.read_npz(Path(f"models/samplers/{run}.npz"))
        assert gmm["weights"].shape == (2,) and gmm["weights"].sum() == pytest.approx(1.0)
        assert gmm["means"].shape == (2, 3)
        for path in result["figures"][run].values():
            assert (Path("reports") / path).is_file()
    assert result["reference"]["real_test"]["sharpness"] == pytest.approx(1.0, rel=0.1)
    labelled = figures["samples_labelled_conv.png"]
    assert len(image_cells(labelled)) == min(quality.LABELLED_GRID, result["sample_count"])
    assert "Gaussian mixture" in labelled.texts[0].get_text()
    # each cell titled with label and confidence
    assert all(ax.get_title() for ax in image_cells(labelled))
    assert [run for run, _ in project["logged"]] == ["fc", "conv", "conv_beta5", "evaluator"]
    headline = json.loads(Path("reports/metrics/sample_quality.json").read_text())
    assert set(headline["conv"]) == sampler_names
    assert set(headline["reference_accuracy"]) == judged_references
    assert set(headline["conv"]["gmm"]) == set(quality.HEADLINE_QUALITY)
    drawn = sorted(p.name for p in Path("reports/figures/sample_quality").iterdir())
    assert drawn == [f"samples_labelled_{run}.png" for run in sorted(result["runs"])]
    with Image.open("reports/figures/sample_quality/samples_labelled_fc.png") as image:
        assert np.asarray(image.convert("L")).std() > 0  # the file holds the drawn images


def scored_rows(result: dict) -> list[dict]:
    """Every scored row of sample_quality.json, reference rows first, without its accuracy."""
    rows = [*result["reference"].values()]
    for run in result["runs"].values():
        rows += [*run["samplers"].values(), run["reconstructions"]]
    return [{k: v for k, v in row.items() if k != "accuracy"} for row in rows]


def test_no_test_label_fits_anything_the_temperature_comes_from_the_training_holdout(project):
    first = quality.sample_quality(project["params"])
    # Relabel every test image: the temperature, the reference rows and every run's numbers stay.
    write_cifar(y_test=(np.arange(60) + 3) % 10)
    second = quality.sample_quality(project["params"])
    assert second["temperature"] == first["temperature"]
    assert second["reference"] != first["reference"]  # the accuracies moved ...
    assert scored_rows(second) == scored_rows(first)  # ... and nothing else
    # Relabelling the judge's held-out training images moves it.
    labels = np.arange(48) % 10
    labels[28:] = (labels[28:] + 5) % 10
    write_cifar(y_train=labels)
    third = quality.sample_quality(project["params"])
    assert third["temperature"] != first["temperature"]
    assert third["judge_holdout_accuracy"] != first["judge_holdout_accuracy"]
    params = copy.deepcopy(project["params"])  # a judge without a holdout is refused
    params["runs"]["evaluator"]["holdout"] = 0
    with pytest.raises(VaelabError, match="holdout is 0"):
        quality.sample_quality(params)


def test_beta_study_summarises_every_beta_over_its_seeds(project, figures):
    params = project["params"]
    study = betas.beta_study(params)
    assert list(study["shapes"]) == ["1", "5", "16", "64", "256"]
    assert list(study["cifar10"]) == ["1", "5"]
    assert study["compared"] == {"low": "1", "high": "5"}
    seeds = study["shapes_spread"]["5"]["mig"]
    assert seeds["values"] == pytest.approx([0.25, 0.255, 0.26])
    assert seeds["mean"] == pytest.approx(0.255) and seeds["std"] == pytest.approx(0.005)
    assert study["shapes"]["5"]["mig"] == pytest.approx(0.255)
    assert study["shapes"]["5"]["seeds"] == 3 and "path_ratios" not in study["shapes"]["5"]
    autoencoder = study["autoencoder_spread"]["recon_mse"]["values"]
    assert autoencoder == pytest.approx([0.0012, 0.001212, 0.001224])
    cifar5 = study["cifar10"]["5"]
    assert cifar5["model"] == "conv_beta5" and cifar5["kl"] == 60.0
    assert np.isfinite(cifar5["gaussian_tc"])
    # The tiny data's 70 images hold 9 distinct factor combinations at most: ln 9 nats or less.
    assert 0 < study["factor_information_nats"] <= np.log(9) + 1e-9
    gradient = study["reparameterization"]
    assert gradient["beta"] == "1" and gradient["dims"] == 2 and gradient["images"] == 2
    # 5 epochs of ceil(40 / 32) = 2 steps; the last fifth of the curve is its last epoch
    assert study["steps"] == {**dict.fromkeys(study["shapes"], 10), "autoencoder": 10}
    run = study["convergence"]["shapes_b5/s1"]
    assert run["steps"] == 10 and run["epochs"] == 5 and run["batch_size"] == 32
    assert run["test_mse_last_fifth_change"] == pytest.approx(0.00637 / 0.0065 - 1)
    assert study["best_beta"] == "16"  # the highest mean MIG (0.30 + the seeds' 0.005 steps)
    hue, shape = study["factors"]["16"]["hue"], study["factors"]["16"]["shape"]
    assert hue["carrier"] == [2, 2, 2] and shape["carrier"] == [0, 0, 0]
    assert hue["mig"]["values"] == pytest.approx([0.30, 0.305, 0.31])
    assert shape["carrier_mi"]["mean"] == pytest.approx(0.405)
    assert json.loads(Path("reports/metrics_beta.json").read_text()) == study
    headline = json.loads(Path("reports/metrics/beta_study.json").read_text())
    assert set(headline) == {"beta_1", "beta_5", "beta_16", "beta_64", "beta_256", "autoencoder"}
    assert headline["beta_5"]["mig"] == pytest.approx(0.255) and "kl" not in headline["autoencoder"]
    theory = Path("reports/theory.md").read_text()
    assert "0.60 for the autoencoder against 0.20 (beta = 1)" in theory
    assert "farther from real shapes than every VAE's: the KL is what makes the prior" in theory
    assert "3 seeds" in theory and f"`{study['figures']['autoencoder_vs_vae']}`" in theory
    for path in study["figures"].values():
        assert (Path("reports") / path).is_file()
    sweep = figures["beta_sweep.png"]
    assert len(sweep.axes) == 3
    for ax in sweep.axes:  # every panel: a mean line over the 5 betas and each seed's dot
        means = [line for line in ax.get_lines() if len(line.get_xdata()) == 5]
        assert means and all(np.isfinite(np.asarray(m.get_ydata(), float)).all() for m in means)
        dots = sum(len(c.get_offsets()) for c in ax.collections if len(c.get_offsets()) == 3)
        assert dots >= 15
    # 3 models x (samples, path)
    assert len(image_cells(figures["autoencoder_vs_vae_shapes.png"])) == 6
    assert [run for run, _ in project["logged"]] == ["shapes_b1/s0"]


def test_beta_study_takes_betas_from_the_run_configs_and_names_a_missing_evaluation(project):
    params = copy.deepcopy(project["params"])
    for seed in range(3):  # the names say 5; the configs decide
        params["runs"][f"shapes_b5/s{seed}"]["beta"] = 0.5
    study = betas.beta_study(params)
    assert list(study["shapes"]) == ["0.5", "1", "16", "64", "256"]
    assert study["compared"]["low"] == "0.5"
    store.eval_path("shapes_b5/s1").unlink()
    missing = r"reports/eval/shapes_b5/s1.json is missing; run evaluate_sweep@shapes_b5"
    with pytest.raises(VaelabError, match=missing):
        betas.beta_study(project["params"])
