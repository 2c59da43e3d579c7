import pytest
import torch

from vaelab.models import build_model, reparameterize

FC = {"arch": "fc", "latent_dim": 16, "hidden": [64, 32]}
CONV = {"arch": "conv", "latent_dim": 16, "widths": [8, 16, 32, 64]}


@pytest.mark.parametrize("config", [FC, CONV], ids=["fc", "conv"])
def test_shapes_and_range(config):
    model = build_model(config)
    x = torch.rand(5, 3, 32, 32)
    decoded, mu, logvar = model(x)  # the likelihood's parameters of a sampled z
    assert mu.shape == logvar.shape == (5, 16)
    assert decoded.shape == (5, 3, 32, 32)
    mean = model.decode(torch.randn(7, 16))  # the mean image, always in [0, 1]
    assert mean.shape == (7, 3, 32, 32) and mean.min() >= 0 and mean.max() <= 1
    nll = model.reconstruction_nll(x, decoded)
    assert nll.shape == (5,) and torch.isfinite(nll).all() and (nll > 0).all()  # 8-bit nats


def test_conv_vae_takes_64x64_with_one_more_block_and_refuses_a_size_it_cannot_halve():
    model = build_model({**CONV, "widths": [8, 16, 32, 64, 64], "image_size": 64})
    decoded, mu, _ = model(torch.rand(2, 3, 64, 64))
    assert decoded.shape == (2, 3, 64, 64) and mu.shape == (2, 16)
    with pytest.raises(ValueError, match="not divisible"):
        build_model({**CONV, "image_size": 40})


def test_reparameterize_has_the_posterior_moments_and_passes_gradients():
    torch.manual_seed(0)
    mu = torch.full((20000, 1), 2.0, requires_grad=True)
    logvar = torch.full((20000, 1), torch.log(torch.tensor(0.25)).item(), requires_grad=True)
    z = reparameterize(mu, logvar)
    assert abs(z.mean().item() - 2.0) < 0.02
    assert abs(z.std().item() - 0.5) < 0.02
    (z**2).sum().backward()
    assert mu.grad.abs().sum() > 0 and logvar.grad.abs().sum() > 0
