import math

import pytest
import torch
from torch.distributions import Normal

from vaelab.losses import (
    bits_per_dim,
    dequantised_gaussian_nll,
    gaussian_nll,
    kl_to_standard_normal,
    vae_loss,
)


@pytest.mark.parametrize(
    "mu, logvar, expected",
    [(0.0, 0.0, 0.0), (1.0, 0.0, 0.5), (0.0, 2.0, (math.exp(2.0) - 3.0) / 2)],
    ids=["the prior itself", "shifted mean", "wider"],
)
def test_kl_per_dim_matches_the_closed_form(mu, logvar, expected):
    # KL(N(mu, e^logvar) || N(0, 1)) = (mu^2 + e^logvar - 1 - logvar) / 2 per dim
    kl = kl_to_standard_normal(torch.full((3, 4), mu), torch.full((3, 4), logvar))
    assert torch.allclose(kl, torch.full((3, 4), expected), rtol=1e-6, atol=1e-8)


def test_gaussian_nll_matches_known_density_and_dequantising_adds_log_256():
    x = torch.rand(2, 3, 4, 4)
    mean = torch.rand(2, 3, 4, 4)
    log_sigma = torch.tensor([-1.0, -2.0, 0.5]).view(1, 3, 1, 1)
    expected = -Normal(mean, log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(x, mean, log_sigma), expected, atol=1e-4)
    # At the mean with sigma = 1, each of the 48 dims costs exactly log(2 pi) / 2.
    unit = torch.zeros(1, 3, 1, 1)
    nll = gaussian_nll(x, x, unit)
    assert torch.allclose(nll, torch.full((2,), 48 * 0.5 * math.log(2 * math.pi)))
    # Dequantised: the density moves to the 8-bit grid, log(256) more per dim.
    shift = dequantised_gaussian_nll(x, mean, unit) - gaussian_nll(x, mean, unit)
    assert torch.allclose(shift, torch.full((2,), 48 * math.log(256.0)))


def test_loss_sums_over_pixels_and_averages_over_the_batch():
    x = torch.rand(4, 3, 8, 8)
    mean, mu, logvar = torch.rand(4, 3, 8, 8), torch.randn(4, 5), torch.randn(4, 5)
    log_sigma = torch.zeros(1, 3, 1, 1)
    recon = dequantised_gaussian_nll(x, mean, log_sigma)
    single = vae_loss(recon, mu, logvar, beta=1.0)
    doubled_batch = vae_loss(
        torch.cat([recon, recon]), torch.cat([mu, mu]), torch.cat([logvar, logvar]), beta=1.0
    )
    assert torch.allclose(single["loss"], doubled_batch["loss"])  # a mean over images
    wide = dequantised_gaussian_nll(torch.cat([x, x], 3), torch.cat([mean, mean], 3), log_sigma)
    assert torch.allclose(wide, 2 * recon)  # a sum over pixels
    beta5 = vae_loss(recon, mu, logvar, beta=5.0)
    assert torch.allclose(beta5["loss"], single["recon"] + 5 * single["kl"])
    assert torch.allclose(beta5["neg_elbo"], single["neg_elbo"])  # the bound ignores beta


def test_bits_per_dim_of_discrete_nats():
    dims = 3072
    assert math.isclose(bits_per_dim(dims * math.log(2) * 4.5, dims), 4.5)
    assert math.isclose(bits_per_dim(dims * math.log(256), dims), 8.0)  # uniform over 256 values
