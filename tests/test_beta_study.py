import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from vaelab import shapes_evaluate

from vaelab.beta_study import cifar_entries, compared_labels
from vaelab.errors import VaelabError
from vaelab.gradient_estimators import estimator_variances
from vaelab.latent_geometry import (interpolation_smoothness, nearest_neighbour_mse, path_steps, prior_sample_distance,
                                    reference_pixels)
from vaelab.models import build_model
from vaelab.shapes import FACTOR_LABELS, load_shapes, make_shapes
from vaelab.shapes_evaluate import evaluate_shapes_model, evaluation_settings, traversal_rows
from vaelab.theory import theory_markdown

ROOT = Path(__file__).resolve().parents[1]


def shapes_row(mse, kl, units, mig, dci, tc, prior, ratio, midpoint):
    return {"recon_mse": mse, "kl": kl, "active_units": units, "latent_dim": 10, "mig": mig, "dci": dci,
            "gaussian_tc": tc, "prior_nn_mse": prior, "path_max_over_mean": ratio, "midpoint_nn_mse": midpoint}


STUDY = {
    "shapes": {"1": shapes_row(0.0020, 30.0, 8, 0.10, 0.30, 0.90, 0.020, 1.6, 0.010),
               "2": shapes_row(0.0025, 24.0, 7, 0.15, 0.35, 0.60, 0.018, 1.5, 0.009),
               "5": shapes_row(0.0040, 15.0, 5, 0.25, 0.45, 0.30, 0.015, 1.4, 0.008),
               "10": shapes_row(0.0070, 9.0, 4, 0.20, 0.40, 0.20, 0.014, 1.3, 0.008)},
    "shapes_autoencoder": {"recon_mse": 0.0012, "active_units": 10, "latent_dim": 10, "mig": 0.05, "dci": 0.20,
                           "gaussian_tc": 2.5, "prior_nn_mse": 0.060, "path_max_over_mean": 2.9,
                           "midpoint_nn_mse": 0.031},
    "cifar10": {"1": {"gaussian_tc": 40.0}, "5": {"gaussian_tc": 12.0}},
    "reparameterization": {"variance_ratio_median": 310.0, "variance_ratio_range": [12.0, 9000.0],
                           "posterior_std_median": 0.08, "images": 16, "samples": 64, "dims": 8, "beta": "1"},
    "compared": {"low": "1", "high": "5"},
    "evaluation": {"test_images": 2000, "paths": 64, "path_steps": 12, "prior_samples": 128},
}


def test_theory_answers_each_question_from_the_numbers_and_points_at_figures():
    text = theory_markdown(STUDY)
    for heading in ("## 1. Why the KL term matters", "## 2. How the reparameterization trick",
                    "## 3. Why a probabilistic latent space", "## 4. What the KL term does for a smooth"):
        assert heading in text
    sections = text.split("## ")[1:]
    assert all("figures/" in s or "metrics_beta.json" in s for s in sections)
    assert "0.0600 for the autoencoder" in text and "3.0x, farther from any real shape" in text
    assert "the KL (nats/image) fell from 30 to 9" in text and "active units fell from 8 to 4 of 10" in text
    assert "median 310 times" in text and "the score-function estimate is the noisier one" in text
    assert "0.0310 for the autoencoder" in text and "3.1x, less like a real shape" in text
    assert "autoencoder 2.90" in text and "1.40 (beta = 5)" in text and "1.8x, more abrupt" in text
    assert "went from 40.00 (beta = 1) to 12.00 nats (beta = 5)" in text


def test_theory_says_so_when_the_numbers_show_no_difference():
    same = copy.deepcopy(STUDY)
    same["shapes_autoencoder"].update(prior_nn_mse=0.0201, midpoint_nn_mse=0.0101, path_max_over_mean=1.61)
    for row in same["shapes"].values():
        row.update(kl=30.0, active_units=8, recon_mse=0.002)
    same["reparameterization"] = None
    text = theory_markdown(same)
    assert text.count("no clear difference") == 3
    assert "showed no clear effect (30 to 30)" in text
    assert "has no active latent dim" in text


def test_the_autoencoder_is_compared_with_the_lowest_beta_and_beta_5():
    assert compared_labels(["10", "1", "5", "2"]) == ("1", "5")
    assert compared_labels(["0.5", "2", "4"]) == ("0.5", "4")
    assert compared_labels(["1"]) == ("1", "1")


def test_cifar_rows_are_keyed_by_their_beta():
    metrics = {name: {"beta": beta, "test_recon_mse": 0.01, "test_kl": 50.0, "active_units": 30, "latent_dim": 128,
                      "test_bpd": 5.0, "sample_sharpness": 0.4, "epochs": 40}
               for name, beta in (("conv", 1.0), ("conv_beta5", 5.0))}
    rows = cifar_entries(metrics, {"conv": [0.1], "conv_beta5": [0.2]}, {"conv": 3.0, "conv_beta5": 1.0})
    assert list(rows) == ["1", "5"]
    assert rows["5"]["model"] == "conv_beta5" and rows["5"]["gaussian_tc"] == 1.0 and rows["1"]["kl_per_dim"] == [0.1]
    metrics["conv_beta5"]["beta"] = 1.0
    with pytest.raises(VaelabError, match="both have beta = 1"):
        cifar_entries(metrics, {"conv": [0.1], "conv_beta5": [0.2]}, {"conv": 3.0, "conv_beta5": 1.0})


def test_nearest_neighbour_mse_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (50, 32, 32, 3), generator=generator, dtype=torch.uint8)
    flat = reference_pixels(reference)
    images = torch.rand(7, 3, 32, 32, generator=generator)
    brute = torch.stack([((flat - image.flatten()) ** 2).mean(dim=1).min() for image in images])
    assert torch.allclose(nearest_neighbour_mse(images, flat, chunk=16), brute, atol=1e-5)
    # A reference image itself is at distance 0.
    own = flat[3].reshape(3, 32, 32).unsqueeze(0)
    assert nearest_neighbour_mse(own, flat).item() < 1e-6


class LinearDecoder(torch.nn.Module):
    """A decoder linear in z: every step along a straight path changes the image equally."""

    def __init__(self):
        super().__init__()
        self.latent_dim = 2
        self.weight = torch.nn.Parameter(torch.randn(2, 3 * 32 * 32, generator=torch.Generator().manual_seed(1)) * 0.01)

    def decode(self, z):
        return (0.5 + z @ self.weight).reshape(-1, 3, 32, 32)


class StepDecoder(LinearDecoder):
    """A decoder that jumps: the image flips where z_0 crosses 0."""

    def decode(self, z):
        return (0.2 + 0.6 * (z[:, :1] > 0).float()).expand(-1, 3 * 32 * 32).reshape(-1, 3, 32, 32)


def test_smoothness_is_one_for_an_even_path_and_large_for_a_jump():
    reference = reference_pixels(torch.full((4, 32, 32, 3), 128, dtype=torch.uint8))
    starts, ends = torch.tensor([[-1.0, 0.0], [-2.0, 1.0]]), torch.tensor([[1.0, 0.5], [1.5, -1.0]])
    even = interpolation_smoothness(LinearDecoder(), starts, ends, steps=11, reference=reference)
    assert even["path_max_over_mean"] == pytest.approx(1.0, abs=1e-3)
    jump = interpolation_smoothness(StepDecoder(), starts, ends, steps=11, reference=reference)
    assert jump["path_max_over_mean"] == pytest.approx(10.0, rel=1e-3)  # all change in 1 of 10 steps
    assert len(jump["path_ratios"]) == 2 and len(jump["path_mean_steps"]) == 2
    assert path_steps(torch.zeros(5, 3, 32, 32)).tolist() == [0.0] * 4
    prior = prior_sample_distance(LinearDecoder(), reference, count=6, seed=0)
    assert 0 <= prior["prior_nn_mse"] < 0.01


def test_the_pathwise_gradient_is_less_noisy_than_the_score_function():
    torch.manual_seed(0)
    model = build_model({"arch": "conv", "latent_dim": 4, "widths": [8, 16]})
    images = torch.randint(0, 256, (4, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    result = estimator_variances(model, images, dims=[0, 1, 2, 3], samples=32, seed=0)
    assert result["variance_ratio_median"] > 2  # even untrained; trained posteriors are sharper, the gap wider
    assert result["images"] == 4 and result["samples"] == 32 and result["dims"] == 4
    assert estimator_variances(model, images, dims=[0, 1, 2, 3], samples=32, seed=0) == result  # seeded


def test_traversal_rows_are_the_active_dims_by_kl_with_their_factor():
    metrics = {"kl_per_dim": [0.1, 3.0, 0.0, 1.5], "active_dims": [1, 3],
               "dim_factor": [{"factor": "hue", "normalised_mi": 0.1}, {"factor": "x position", "normalised_mi": 0.8},
                              {"factor": "shape", "normalised_mi": 0.0}, {"factor": "scale", "normalised_mi": 0.5}]}
    dims, labels = traversal_rows(metrics)
    assert dims == [1, 3]
    assert labels[0] == "z1 (KL 3.00)\nx position 0.80" and labels[1].endswith("scale 0.50")
    metrics["active_dims"] = []
    metrics["dim_factor"][3]["normalised_mi"] = 0.0  # an inactive dim holds no factor
    dims, labels = traversal_rows(metrics)
    assert dims == [1, 3, 0] and "inactive" in labels[0] and labels[1].endswith("no factor")


def test_inactive_vae_dims_count_for_nothing_but_every_autoencoder_dim_counts(tmp_path, monkeypatch):
    levels = {"shapes": ["square", "ellipse", "triangle"], "hue": 3, "scale": 2, "rotation": 2, "x": 3, "y": 3}
    make_shapes(tmp_path / "s.npz", levels, test_count=60, seed=0)
    dataset = load_shapes(tmp_path / "s.npz")
    dataset["factor_names"] = [FACTOR_LABELS[n] for n in dataset["factor_names"]]
    images = torch.cat([dataset["x_train"], dataset["x_test"]])
    factors = np.concatenate([dataset["factors_train"], dataset["factors_test"]])
    lookup = {image.numpy().tobytes(): row for image, row in zip(images, factors)}

    def designed_codes(model, batch, device, batch_size=500):
        """dim 0 = the x position (an active dim); dim 1 = the hue at 1/100 scale (inactive)."""
        rows = torch.tensor(np.stack([lookup[image.numpy().tobytes()] for image in batch]), dtype=torch.float32)
        mu = torch.zeros(len(batch), 4)
        mu[:, 0], mu[:, 1] = rows[:, 4], 0.01 * rows[:, 1]
        return mu, torch.zeros_like(mu)

    monkeypatch.setattr(shapes_evaluate, "encode_all", designed_codes)
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["shapes"]["evaluate"].update(code_count=100, dci_trees=5, prior_samples=4, paths=2)
    settings = evaluation_settings(params)
    model = build_model({"arch": "conv", "latent_dim": 4, "widths": [4, 8]})
    vae = evaluate_shapes_model(model, False, dataset, settings, torch.device("cpu"), seed=0)
    assert vae["active_dims"] == [0] and vae["active_units"] == 1
    assert vae["factor_dims"]["x position"][0][0] == 0 and vae["factor_dims"]["hue"] == []
    assert vae["dim_factor"][1]["normalised_mi"] == 0.0
    assert vae["mig_per_factor"]["x position"] > 0.9 and vae["mig_per_factor"]["hue"] < 0.05  # sampling noise only
    autoencoder = evaluate_shapes_model(model, True, dataset, settings, torch.device("cpu"), seed=0)
    assert autoencoder["factor_dims"]["hue"][0][0] == 1 and autoencoder["mig_per_factor"]["hue"] > 0.9
    assert "kl" not in autoencoder and len(vae["kl_per_dim"]) == 4
