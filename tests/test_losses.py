import math

import pytest
import torch
from torch.distributions import Normal

from vaelab.losses import (
    bits_per_dim,
    dequantised_gaussian_nll,
    gaussian_nll,
    kl_to_standard_normal,
    logistic_mixture_mean,
    logistic_mixture_nll,
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


def mixture_params(mixtures: int, means: torch.Tensor, log_scale: float, size: int = 2):
    """Decoder output whose every component has the given (3,) means, one scale, no coupling."""
    params = torch.zeros(1, 10 * mixtures, size, size)
    rest = params[:, mixtures:].view(1, 3, 3, mixtures, size, size)
    rest[:, 0] = means.view(1, 3, 1, 1, 1)
    rest[:, 1] = log_scale
    return params


def test_logistic_mixture_conditionals_sum_to_one():
    # P = sum_k pi_k P_k(r) P_k(g | r) P_k(b | r, g): summed over blue it depends on (r, g) only.
    values = torch.arange(256.0)

    def mass(params, fixed: list[float]) -> float:
        free = 3 - len(fixed)
        grid = torch.cartesian_prod(*[values] * free).view(-1, free)
        k = torch.cat([torch.tensor(fixed).expand(len(grid), -1), grid], 1).view(-1, 3, 1, 1)
        nll = logistic_mixture_nll((k + 0.5) / 256.0, params.expand(len(k), -1, -1, -1), 2)
        return torch.exp(-nll.double()).sum().item()

    def params(blue_mean, blue_scale, green_mean, coupling):
        p = mixture_params(2, torch.tensor([0.3, green_mean, blue_mean]), blue_scale, size=1)
        p[:, :2] = torch.tensor([0.2, -1.0]).view(1, 2, 1, 1)  # unequal component weights
        view = p[:, 2:].view(1, 3, 3, 2, 1, 1)
        view[:, 1, :2] = -2.5  # red and green scales fixed; blue's is blue_scale
        view[:, 2, 0] = 0.7  # green on red, fixed
        view[:, 2, 1:] = coupling  # blue on red and on green
        return p

    a, b = params(-0.5, -3.0, 0.1, 0.7), params(0.8, -1.0, 0.1, -0.4)
    assert 0 < mass(a, [150.0, 140.0]) < 1
    assert math.isclose(mass(a, [150.0, 140.0]), mass(b, [150.0, 140.0]), rel_tol=1e-4)
    c, d = params(-0.5, -3.0, 0.1, 0.7), params(0.2, -2.0, -0.6, 0.7)  # green's mean moved too
    assert math.isclose(mass(c, [150.0]), mass(d, [150.0]), rel_tol=1e-4)


def test_logistic_mixture_prefers_the_mean_and_reports_the_mean():
    values = torch.tensor([64.0, 128.0, 191.0])
    means = values / 127.5 - 1.0  # bin centres on the [-1, 1] scale
    params = mixture_params(1, means, log_scale=-7.0)  # far narrower than a bin (2 / 255)
    mean = logistic_mixture_mean(params, 1)
    assert torch.allclose(mean[0, :, 0, 0], (means + 1) / 2, atol=1e-6)
    at_mean = values.view(1, 3, 1, 1).expand(1, 3, 2, 2)
    off = (at_mean + 20).clamp(max=255)
    nll_at, nll_off = (logistic_mixture_nll((k + 0.5) / 256.0, params, 1) for k in (at_mean, off))
    assert nll_at.item() < nll_off.item()
    # A sharp logistic centred on a bin puts almost all mass there: about 0 nats per value.
    assert nll_at.item() / 12 < 0.05
