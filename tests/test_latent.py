"""Latent-space geometry on toy codes and decoders: nearest neighbours, interpolation smoothness,
gradient estimator variances."""

import pytest
import torch

from vaelab.metrics import latent
from vaelab.models import build_model

TINY = {"arch": "conv", "latent_dim": 4, "widths": [8, 16], "image_size": 8, "channels": 3}


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return build_model(TINY)


def test_nearest_index_matches_brute_force():
    generator = torch.Generator().manual_seed(0)
    reference = torch.randint(0, 256, (50, 32, 32, 3), generator=generator, dtype=torch.uint8)
    flat = latent.reference_pixels(reference)
    images = torch.rand(7, 3, 32, 32, generator=generator)
    brute = torch.stack([((flat - image.flatten()) ** 2).mean(dim=1).argmin() for image in images])
    assert torch.equal(latent.nearest_index(images, flat), brute)
    # The search in chunks finds the same neighbours as one block.
    assert torch.equal(latent.nearest_index(images, flat, chunk=16), brute)
    # A reference image is its own nearest.
    own = flat[3].reshape(3, 32, 32).unsqueeze(0)
    assert latent.nearest_index(own, flat).item() == 3
    # The reference pixels are the centres of the dequantisation bins.
    images = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 1, 1, 3)
    expected = torch.tensor([[0.5 / 256, 255.5 / 256, 128.5 / 256]])
    assert torch.allclose(latent.reference_pixels(images), expected)


class LinearDecoder(torch.nn.Module):
    """A decoder linear in z: every step along a straight path changes the image equally."""

    def __init__(self):
        super().__init__()
        self.latent_dim = 2
        weight = torch.randn(2, 3 * 32 * 32, generator=torch.Generator().manual_seed(1))
        self.weight = torch.nn.Parameter(weight * 0.01)

    def decode(self, z):
        return (0.5 + z @ self.weight).reshape(-1, 3, 32, 32)


class StepDecoder(LinearDecoder):
    """A decoder that jumps: the image flips where z_0 crosses 0."""

    def decode(self, z):
        return (0.2 + 0.6 * (z[:, :1] > 0).float()).repeat(1, 3 * 32 * 32).reshape(-1, 3, 32, 32)


def test_interpolate_walks_evenly_from_start_to_end_for_one_path_or_many():
    a, b = torch.tensor([0.0, 2.0]), torch.tensor([1.0, -2.0])
    line = latent.interpolate(a, b, 5)
    assert line.shape == (5, 2)
    assert torch.allclose(
        line, torch.tensor([[0.0, 2.0], [0.25, 1.0], [0.5, 0.0], [0.75, -1.0], [1.0, -2.0]])
    )
    many = latent.interpolate(torch.stack([a, b]), torch.stack([b, a]), 5)
    assert many.shape == (2, 5, 2)
    assert torch.equal(many[0], line) and torch.allclose(many[1], line.flip(0))


def test_smoothness_is_one_for_an_even_path_and_large_for_a_jump():
    starts, ends = torch.tensor([[-1.0, 0.0], [-2.0, 1.0]]), torch.tensor([[1.0, 0.5], [1.5, -1.0]])
    even = latent.interpolation_smoothness(LinearDecoder(), starts, ends, 11)
    assert even["path_max_over_mean"] == pytest.approx(1.0, abs=1e-3)
    jump = latent.interpolation_smoothness(StepDecoder(), starts, ends, 11)
    assert jump["path_max_over_mean"] == pytest.approx(10.0, rel=1e-3)  # all in 1 of 10 steps
    assert len(jump["path_ratios"]) == 2 and len(jump["path_mean_steps"]) == 2
    assert latent.path_steps(torch.zeros(5, 3, 32, 32)).tolist() == [0.0] * 4


def test_smoothness_per_path_does_not_depend_on_the_decoding_batches():
    model = tiny_model().eval()
    g = torch.Generator().manual_seed(2)
    starts, ends = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    # batches cut across paths
    result = latent.interpolation_smoothness(model, starts, ends, steps=6, batch_size=4)
    with torch.no_grad():
        by_hand = [
            latent.path_steps(model.decode(latent.interpolate(a, b, 6))).mean().item()
            for a, b in zip(starts, ends, strict=True)
        ]
    assert result["path_mean_steps"] == pytest.approx(by_hand, rel=1e-5)


def test_the_pathwise_gradient_is_less_noisy_than_the_score_function():
    model = tiny_model()
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (4, 8, 8, 3), generator=generator, dtype=torch.uint8)
    result = latent.estimator_variances(model, images, dims=[0, 1, 2, 3], samples=32, seed=0)
    # even untrained; trained posteriors are sharper, the gap wider
    assert result["variance_ratio_median"] > 2
    assert result["images"] == 4 and result["samples"] == 32 and result["dims"] == 4
    again = latent.estimator_variances(model, images, dims=[0, 1, 2, 3], samples=32, seed=0)
    assert again == result  # seeded
