"""theory.md answers each question with the study's numbers; its comparison words follow them."""

import copy

from conftest import seeded
from vaelab.betas import theory_markdown


def shapes_row(mse, kl, units, mig, tc, prior, ratio, midpoint):
    """A shapes model's row; `prior` and `midpoint` are errors relative to a blank image."""
    return {
        **dict(recon_mse=mse, kl=kl, active_units=units, latent_dim=10, mig=mig),
        **dict(factor_vae=mig + 0.2, gaussian_tc=tc, prior_relative_error=prior),
        **dict(path_max_over_mean=ratio, midpoint_relative_error=midpoint),
    }


STUDY = {
    "shapes": {
        "1": shapes_row(0.0020, 30.0, 8, 0.10, 0.90, 0.20, 1.6, 0.30),
        "2": shapes_row(0.0025, 24.0, 7, 0.15, 0.60, 0.18, 1.5, 0.28),
        "5": shapes_row(0.0040, 15.0, 5, 0.25, 0.30, 0.15, 1.4, 0.26),
        "10": shapes_row(0.0070, 9.0, 4, 0.20, 0.20, 0.14, 1.3, 0.25),
    },
    "shapes_autoencoder": {
        **dict(recon_mse=0.0012, active_units=10, latent_dim=10, mig=0.05),
        **dict(factor_vae=0.25, gaussian_tc=2.5, prior_relative_error=0.95),
        **dict(path_max_over_mean=2.9, midpoint_relative_error=0.80),
    },
    "cifar10": {"1": {"gaussian_tc": 40.0}, "5": {"gaussian_tc": 12.0}},
    "reparameterization": {
        **dict(variance_ratio_median=310.0, variance_ratio_range=[12.0, 9000.0]),
        **dict(posterior_std_median=0.08, images=16, samples=64, dims=8, beta="1"),
    },
    "compared": {"low": "1", "high": "5"},
    "factor_information_nats": 9.65,
    "likelihood_sigma": 0.1,
    "evaluation": {"test_images": 2000, "paths": 64, "path_steps": 12, "prior_samples": 128},
    "figures": {
        "interpolation_smoothness": "figures/beta_study/interpolation_smoothness.png",
        "autoencoder_vs_vae": "figures/beta_study/autoencoder_vs_vae_shapes.png",
        "beta_sweep": "figures/beta_study/beta_sweep.png",
    },
}


def test_theory_answers_each_question_from_the_numbers_and_points_at_figures():
    text = theory_markdown(seeded(STUDY))
    for heading in (
        "## 1. Why the KL term matters",
        "## 2. How the reparameterization trick",
        "## 3. Why a probabilistic latent space",
        "## 4. What the KL term does for a smooth",
    ):
        assert heading in text
    sections = text.split("## ")[1:]
    assert all("figures/beta_study/" in s or "metrics_beta.json" in s for s in sections)
    assert all(f"`{path}`" in text for path in STUDY["figures"].values())
    # The derivations: the ELBO from Jensen, the closed-form KL, the two gradient estimators.
    assert "Jensen's inequality" in text and r"\log \sigma_j^2 - 1" in text
    assert r"\nabla_\phi \log q_\phi(z \mid x)" in text and r"\sigma_\phi \odot \epsilon" in text
    assert "0.95 for the autoencoder against 0.20 (beta = 1)" in text
    assert "farther from real shapes than every VAE's: the KL is what makes the prior" in text
    assert "the KL (nats/image) fell from 30 to 9" in text
    assert "active units fell from 8.0 to 4.0 of 10" in text
    assert "median 310 times" in text and "the score-function estimate is the noisier one" in text
    assert "0.80 for the autoencoder against 0.30 (beta = 1)" in text
    assert "the spread filled the gaps" in text
    assert "the autoencoder's is lower than every VAE's: the spread costs" in text
    assert "2.90 for the autoencoder" in text and "1.40 (beta = 5)" in text
    assert "more abrupt than every VAE's: the KL made the paths smoother" in text
    assert "went from 40.00 (beta = 1) to 12.00 nats (beta = 5)" in text
    assert "means over 3 seeds" in text and "the factors hold 9.7 nats" in text


def test_the_comparison_words_flip_with_the_numbers_and_say_when_there_is_no_difference():
    flipped = copy.deepcopy(STUDY)
    flipped["shapes_autoencoder"].update(
        prior_relative_error=0.05, path_max_over_mean=1.2, recon_mse=0.009
    )
    flipped["shapes"]["10"].update(kl=45.0)
    flipped["reparameterization"]["variance_ratio_median"] = 0.5
    text = theory_markdown(seeded(flipped))
    assert "closer to real shapes than every VAE's, so on this measure the KL did not help" in text
    assert "more even than every VAE's, so this measure does not show the KL smoothing" in text
    assert "higher than every VAE's: here the spread cost no reconstruction detail" in text
    assert "the KL (nats/image) rose from 30 to 45" in text
    assert "here the pathwise estimate was the noisier one" in text
    # No difference, or one inside the seeds' spread: the KL means fall from 30 to 9, but with
    # seeds 25 nats either side the ranges overlap.
    text = theory_markdown(seeded(STUDY, jitter={"kl": 25.0}))
    assert "the KL (nats/image) showed no clear effect (30 to 9)" in text
    same = copy.deepcopy(STUDY)
    same["shapes_autoencoder"].update(
        prior_relative_error=0.18, midpoint_relative_error=0.28, path_max_over_mean=1.45
    )
    for row in same["shapes"].values():
        row.update(kl=30.0, active_units=8, recon_mse=0.002)
    same["reparameterization"] = None
    text = theory_markdown(seeded(same))
    assert text.count("no clear difference between the autoencoder and the VAEs") == 3
    assert "showed no clear effect (30 to 30)" in text
    assert "has no active latent dim" in text
