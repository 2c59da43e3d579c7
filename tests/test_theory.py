"""theory.md answers each question with the study's numbers; its comparison words follow them."""

import copy

from vaelab.theory import theory_markdown


def shapes_row(mse, kl, units, mig, dci, tc, prior, ratio, midpoint):
    return {
        "recon_mse": mse,
        "kl": kl,
        "active_units": units,
        "latent_dim": 10,
        "mig": mig,
        "dci": dci,
        "gaussian_tc": tc,
        "prior_nn_mse": prior,
        "path_max_over_mean": ratio,
        "midpoint_nn_mse": midpoint,
    }


STUDY = {
    "shapes": {
        "1": shapes_row(0.0020, 30.0, 8, 0.10, 0.30, 0.90, 0.020, 1.6, 0.010),
        "2": shapes_row(0.0025, 24.0, 7, 0.15, 0.35, 0.60, 0.018, 1.5, 0.009),
        "5": shapes_row(0.0040, 15.0, 5, 0.25, 0.45, 0.30, 0.015, 1.4, 0.008),
        "10": shapes_row(0.0070, 9.0, 4, 0.20, 0.40, 0.20, 0.014, 1.3, 0.008),
    },
    "shapes_autoencoder": {
        "recon_mse": 0.0012,
        "active_units": 10,
        "latent_dim": 10,
        "mig": 0.05,
        "dci": 0.20,
        "gaussian_tc": 2.5,
        "prior_nn_mse": 0.060,
        "path_max_over_mean": 2.9,
        "midpoint_nn_mse": 0.031,
    },
    "cifar10": {"1": {"gaussian_tc": 40.0}, "5": {"gaussian_tc": 12.0}},
    "reparameterization": {
        "variance_ratio_median": 310.0,
        "variance_ratio_range": [12.0, 9000.0],
        "posterior_std_median": 0.08,
        "images": 16,
        "samples": 64,
        "dims": 8,
        "beta": "1",
    },
    "compared": {"low": "1", "high": "5"},
    "evaluation": {"test_images": 2000, "paths": 64, "path_steps": 12, "prior_samples": 128},
    "figures": {
        "beta_tradeoff": "figures/beta_study/beta_tradeoff.png",
        "interpolation_smoothness": "figures/beta_study/interpolation_smoothness.png",
        "autoencoder_vs_vae": "figures/beta_study/autoencoder_vs_vae_shapes.png",
    },
}


def test_theory_answers_each_question_from_the_numbers_and_points_at_figures():
    text = theory_markdown(STUDY)
    for heading in (
        "## 1. Why the KL term matters",
        "## 2. How the reparameterization trick",
        "## 3. Why a probabilistic latent space",
        "## 4. What the KL term does for a smooth",
    ):
        assert heading in text
    sections = text.split("## ")[1:]
    assert all("figures/beta_study/" in s or "metrics_beta.json" in s for s in sections)
    for path in STUDY["figures"].values():
        assert f"`{path}`" in text
    assert "0.0600 for the autoencoder" in text and "3.0x, farther from any real shape" in text
    assert (
        "the KL (nats/image) fell from 30 to 9" in text
        and "active units fell from 8 to 4 of 10" in text
    )
    assert "median 310 times" in text and "the score-function estimate is the noisier one" in text
    assert "0.0310 for the autoencoder" in text and "3.1x, less like a real shape" in text
    assert "autoencoder 2.90" in text and "1.40 (beta = 5)" in text and "1.8x, more abrupt" in text
    assert "went from 40.00 (beta = 1) to 12.00 nats (beta = 5)" in text


def test_flipped_numbers_flip_the_comparison_words():
    flipped = copy.deepcopy(STUDY)
    flipped["shapes_autoencoder"].update(prior_nn_mse=0.005, path_max_over_mean=1.2)
    flipped["shapes"]["10"].update(kl=45.0)
    flipped["reparameterization"]["variance_ratio_median"] = 0.5
    text = theory_markdown(flipped)
    assert "0.25x, closer" in text and "farther from any real shape" not in text
    assert "0.75x, more even" in text and "more abrupt" not in text
    assert "the KL (nats/image) rose from 30 to 45" in text
    assert "here the pathwise estimate was the noisier one" in text


def test_theory_says_so_when_the_numbers_show_no_difference():
    same = copy.deepcopy(STUDY)
    same["shapes_autoencoder"].update(
        prior_nn_mse=0.0201, midpoint_nn_mse=0.0101, path_max_over_mean=1.61
    )
    for row in same["shapes"].values():
        row.update(kl=30.0, active_units=8, recon_mse=0.002)
    same["reparameterization"] = None
    text = theory_markdown(same)
    assert text.count("no clear difference") == 3
    assert "showed no clear effect (30 to 30)" in text
    assert "has no active latent dim" in text
