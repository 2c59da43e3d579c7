"""The likelihood-side metrics on a tiny untrained VAE and judge, against hand computations."""

import pytest
import torch

from vaelab.datasets import to_display, to_model_input
from vaelab.losses import bits_per_dim, dequantised_gaussian_nll, vae_loss
from vaelab.metrics.likelihood import (
    active_mask,
    autoencoder_metrics,
    classifier_accuracy,
    elbo_metrics,
)
from vaelab.models import Classifier, build_model, classify_batches, reparameterize

CPU = torch.device("cpu")
TINY = {"arch": "conv", "latent_dim": 4, "widths": [8, 16], "image_size": 8, "channels": 3}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return build_model(TINY)


def tiny_images(count=12, seed=0, size=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (count, size, size, 3), generator=g, dtype=torch.uint8)


def test_elbo_metrics_are_the_single_sample_elbo_of_seeded_noise_and_z():
    model, images = tiny_model().train(), tiny_images()
    state = torch.get_rng_state()
    metrics = elbo_metrics(model, images, CPU, beta=2.0, batch_size=5, seed=3)
    assert torch.equal(torch.get_rng_state(), state)  # the caller's RNG is left alone
    assert not model.training  # measured in eval mode (fit sets train mode each epoch)
    assert elbo_metrics(model, images, CPU, beta=2.0, batch_size=5, seed=3) == metrics
    other_seed = elbo_metrics(model, images, CPU, beta=2.0, batch_size=5, seed=4)
    assert other_seed["loss"] != metrics["loss"]
    # By hand, in one batch: the same noise stream, the same z draw.
    model.eval()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        x = to_model_input(images, CPU, torch.Generator().manual_seed(3))
        mu, logvar = model.encode(x)
        mean = model.decode(reparameterize(mu, logvar))
        recon = dequantised_gaussian_nll(x, mean, model.log_sigma)
        parts = vae_loss(recon, mu, logvar, 2.0)
        mse = (model.decode(mu) - x).pow(2).mean().item()
    # z is drawn per batch, so only a one-batch evaluation matches the one draw by hand; the
    # z-free MSE matches for any batch size (the noise stream does not depend on the split).
    assert metrics["mse"] == pytest.approx(mse, rel=1e-5)
    single = elbo_metrics(model, images, CPU, beta=2.0, batch_size=len(images), seed=3)
    for key in ("loss", "recon", "kl", "neg_elbo"):
        assert single[key] == pytest.approx(parts[key].item(), rel=1e-5), key
    assert single["loss"] == pytest.approx(single["recon"] + 2.0 * single["kl"], rel=1e-5)
    assert single["bpd"] == pytest.approx(bits_per_dim(single["neg_elbo"], 8 * 8 * 3))
    assert metrics["kl"] > 0


def test_autoencoder_metrics_are_the_error_of_the_deterministic_reconstruction():
    model, images = tiny_model().eval(), tiny_images()
    metrics = autoencoder_metrics(model, images, CPU, batch_size=5)
    x = to_model_input(images, CPU, torch.Generator().manual_seed(0))
    with torch.no_grad():
        mean = model.decode(model.encode(x)[0])
        expected_recon = dequantised_gaussian_nll(x, mean, model.log_sigma).mean().item()
    assert metrics["mse"] == pytest.approx((mean - x).pow(2).mean().item(), rel=1e-5)
    assert metrics["recon"] == pytest.approx(expected_recon, rel=1e-5)
    # The code is mu alone: the log-variance half of the encoder's output does not matter.
    with torch.no_grad():
        model.encoder[-1].weight[TINY["latent_dim"] :].mul_(5.0)
    assert autoencoder_metrics(model, images, CPU, batch_size=5) == metrics


def test_the_active_dims_are_those_whose_mean_varies():
    noise = torch.randn(2, 1000, generator=torch.Generator().manual_seed(0))
    means = torch.stack([noise[0], 0.05 * noise[1], torch.full((1000,), 3.0)], dim=1)
    # variances ~1, ~0.0025, 0
    assert active_mask(means, 0.01).tolist() == [True, False, False]
    assert active_mask(means, 0.001).tolist() == [True, True, False]


def test_classifier_accuracy_compares_flip_averaged_predictions_with_the_labels():
    torch.manual_seed(0)
    judge = Classifier(width=4).eval()
    images = tiny_images(20, size=16)
    predicted = classify_batches(judge, to_display(images), CPU)[1].argmax(1)
    labels = predicted.clone()
    labels[::2] = (labels[::2] + 1) % 10  # every other label wrong
    assert classifier_accuracy(judge, images, predicted, CPU, batch_size=6) == 1.0
    assert classifier_accuracy(judge, images, labels, CPU, batch_size=6) == 0.5
