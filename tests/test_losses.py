import math

import torch
from torch.distributions import Normal

from vaelab.losses import bits_per_dim, gaussian_nll, kl_to_standard_normal, vae_loss


def test_kl_of_the_prior_itself_is_zero():
    mu, logvar = torch.zeros(3, 8), torch.zeros(3, 8)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), torch.zeros(3, 8))


def test_kl_hand_computed():
    # KL(N(1, 1) || N(0, 1)) = 1/2 per dim; KL(N(0, e^2) || N(0, 1)) = (e^2 - 1 - 2) / 2.
    assert torch.allclose(
        kl_to_standard_normal(torch.ones(1, 4), torch.zeros(1, 4)), torch.full((1, 4), 0.5)
    )
    expected = (math.exp(2.0) - 3.0) / 2
    assert math.isclose(
        kl_to_standard_normal(torch.zeros(1, 1), torch.full((1, 1), 2.0)).item(),
        expected,
        rel_tol=1e-6,
    )


def test_gaussian_nll_matches_known_density():
    x = torch.rand(2, 3, 4, 4)
    mean = torch.rand(2, 3, 4, 4)
    log_sigma = torch.tensor([-1.0, -2.0, 0.5]).view(1, 3, 1, 1)
    expected = -Normal(mean, log_sigma.exp()).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(gaussian_nll(x, mean, log_sigma), expected, atol=1e-4)
    # At the mean with sigma = 1, each of the 48 dims costs exactly log(2 pi) / 2.
    nll = gaussian_nll(x, x, torch.zeros(1, 3, 1, 1))
    assert torch.allclose(nll, torch.full((2,), 48 * 0.5 * math.log(2 * math.pi)))


def test_loss_sums_over_pixels_and_averages_over_the_batch():
    x = torch.rand(4, 3, 8, 8)
    mean, mu, logvar = torch.rand(4, 3, 8, 8), torch.randn(4, 5), torch.randn(4, 5)
    log_sigma = torch.zeros(1, 3, 1, 1)
    single = vae_loss(x, mean, log_sigma, mu, logvar, beta=1.0)
    doubled_batch = vae_loss(
        torch.cat([x, x]),
        torch.cat([mean, mean]),
        log_sigma,
        torch.cat([mu, mu]),
        torch.cat([logvar, logvar]),
        beta=1.0,
    )
    assert torch.allclose(single["loss"], doubled_batch["loss"])  # a mean over images
    wide = vae_loss(
        torch.cat([x, x], 3), torch.cat([mean, mean], 3), log_sigma, mu, logvar, beta=1.0
    )
    assert torch.allclose(wide["recon"], 2 * single["recon"])  # a sum over pixels
    beta5 = vae_loss(x, mean, log_sigma, mu, logvar, beta=5.0)
    assert torch.allclose(beta5["loss"], single["recon"] + 5 * single["kl"])
    assert torch.allclose(beta5["neg_elbo"], single["neg_elbo"])  # the bound ignores beta


def test_bits_per_dim_adds_the_8_bit_dequantisation_term():
    dims = 3072
    assert math.isclose(bits_per_dim(0.0, dims), 8.0)
    assert math.isclose(bits_per_dim(dims * math.log(2) * -3.5, dims), 4.5)
