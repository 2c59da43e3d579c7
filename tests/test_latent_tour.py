"""The latent-space tour's arithmetic and measurements on toy codes, and the report text built from them."""

import math

import pytest
import torch

from vaelab import latent_tour
from vaelab.faces_evaluation import report_section
from vaelab.models import build_model


def test_attribute_direction_is_mean_with_minus_mean_without():
    codes = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0], [0.0, 4.0]])
    smiling = torch.tensor([1, 1, -1, -1], dtype=torch.int8)
    direction = latent_tour.attribute_direction(codes, smiling)
    assert torch.equal(direction, torch.tensor([2.0, -3.0]))  # (2, 0) - (0, 3)
    edited = latent_tour.apply_direction(torch.tensor([0.5, 0.5]), direction, [-2, -1, 0, 1, 2])
    assert torch.equal(edited, torch.tensor([[-3.5, 6.5], [-1.5, 3.5], [0.5, 0.5], [2.5, -2.5], [4.5, -5.5]]))
    # Adding the direction to the mean code without the attribute gives the mean code with it.
    without, with_ = codes[2:].mean(0), codes[:2].mean(0)
    assert torch.allclose(latent_tour.apply_direction(without, direction, [1])[0], with_)


def test_a_one_sided_attribute_has_no_direction():
    with pytest.raises(ValueError, match="with and without"):
        latent_tour.attribute_direction(torch.randn(3, 2), torch.tensor([1, 1, 1]))


@pytest.mark.parametrize("radius", [0.0, 1.0, 3 * math.sqrt(16)])
def test_shell_codes_lie_on_their_sphere_in_all_directions(radius):
    codes = latent_tour.shell_codes(2000, 16, radius, torch.Generator().manual_seed(0))
    assert codes.shape == (2000, 16)
    assert torch.allclose(codes.norm(dim=1), torch.full((2000,), radius), atol=1e-4)
    if radius:
        assert codes.mean(0).abs().max() < 0.1 * radius  # no preferred direction


def test_reencoding_distance_ignores_inactive_dimensions_and_consistency_counts_the_near_ones():
    codes = torch.zeros(4, 3)
    reencoded = torch.tensor([[0.0, 0.0, 9.0], [0.3, 0.4, 0.0], [1.0, 1.0, 5.0], [0.0, 0.1, 0.0]])
    active = torch.tensor([True, True, False])
    distances = latent_tour.reencoding_distance(codes, reencoded, active)
    assert torch.allclose(distances, torch.tensor([0.0, math.sqrt(0.125), 1.0, math.sqrt(0.005)]))
    assert latent_tour.consistency(distances, 0.36) == 0.75


def test_active_dimensions_fall_back_to_all_when_none_varies():
    means = torch.cat([torch.randn(100, 1), torch.zeros(100, 2)], dim=1)
    assert latent_tour.active_dimensions(means, 0.01).tolist() == [True, False, False]
    assert latent_tour.active_dimensions(torch.zeros(100, 3), 0.01).tolist() == [True, True, True]


def test_linear_probe_finds_a_linearly_coded_attribute_and_reports_the_baseline():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(400, 5, generator=g), torch.randn(200, 5, generator=g)
    label = lambda codes: torch.stack([torch.where(codes[:, 0] + 0.5 * codes[:, 3] > 0.3, 1, -1),  # noqa: E731
                                       torch.where(torch.rand(len(codes), generator=g) < 0.8, 1, -1),
                                       torch.full((len(codes),), -1)], dim=1).to(torch.int8)
    scores, probes = latent_tour.probe_attributes(train, label(train), test, label(test), ["coded", "noise", "never"])
    test_labels = label(test)
    assert scores["coded"]["accuracy"] > 0.95
    assert scores["coded"]["baseline"] == pytest.approx(float((test_labels[:, 0] < 0).float().mean()))
    assert scores["noise"]["accuracy"] < scores["noise"]["baseline"] + 0.05  # nothing to find beyond the majority
    assert "never" not in probes and scores["never"] == {"accuracy": 1.0, "baseline": 1.0}


def test_reencode_returns_the_posterior_means_of_the_decoded_codes():
    torch.manual_seed(0)
    model = build_model({"arch": "conv", "latent_dim": 4, "widths": [4, 8]}).eval()
    codes = torch.randn(7, 4)
    expected = model.encode(model.decode(codes))[0]
    assert torch.allclose(latent_tour.reencode(model, codes, batch_size=3), expected, atol=1e-6)


def _metrics(shells):
    return {
        "test_neg_elbo": -9000.0, "test_bpd": 4.1, "test_recon_mse": 0.004, "test_kl": 150.0, "active_units": 70,
        "latent_dim": 128, "sample_sharpness": 0.4, "epochs": 40, "train_seconds": 480.0, "train_images": 9000,
        "test_images": 1000, "image_size": 64, "data_source": "celeba-10k.tar.gz", "tour_samples": 1000,
        "shells": shells, "shell_reencoding_distance": {r: 0.1 for r in shells}, "reencoding_dimensions": 70,
        "shell_fd_codes": {r: 5.0 + abs(float(r) - 1) for r in shells},
        "consistency_quantile": 0.95, "consistency_threshold": 0.2,
        "neighbourhoods": {"pixel_rmse": {"0.25": 0.02, "1": 0.1}, "between_faces_rmse": 0.2},
        "attribute_edit": {"Smiling": {"-2": 0.1, "+0": 0.5, "+2": 0.9}}, "edited_faces": 200,
        "attribute_probe": {"Smiling": 0.85, "Male": 0.9}, "attribute_probe_baseline": {"Smiling": 0.5, "Male": 0.6},
        "gmm_components": 10, "interpolation_steps": 10,
        "samplers": {name: {"reencoding_consistency": c, "reencoding_distance": 0.2, "fd_codes": fd, "sharpness": 0.5}
                     for name, c, fd in (("prior", 0.4, 9.0), ("gmm", 0.8, 3.0), ("real_test", 0.95, 1.5))},
    }


def test_report_section_states_the_terms_and_reads_its_sentences_from_the_numbers():
    text = report_section(_metrics({"0": 1.0, "0.5": 0.9, "1": 0.6, "3": 0.02}))
    assert "non-commercial research purposes only" in text
    assert "highest at r = 0 (100%) and is 2% at r = 3" in text
    assert "fd_codes is lowest (closest to real faces) at r = 1 (5.00) and rises to 7.00 at r = 3" in text
    assert "raises re-encoding consistency (40% from N(0, I), 80% from the mixture" in text
    assert "takes fd_codes from 9.00 to 3.00" in text
    assert text.index("| Smiling | 0.850 | 0.500 | +0.350 |") < text.index("| Male | 0.900 | 0.600 | +0.300 |")
    assert "![faces_shells.png](figures/faces_shells.png)" in text
    other = report_section(_metrics({"0": 0.0, "1": 0.7, "3": 0.1}) | {"attribute_probe": {}, "attribute_edit": {}})
    assert "highest at r = 1 (70%)" in other and "came without attributes" in other
    flat = report_section(_metrics({"0": 0.0, "1": 0.0, "3": 0.0}))
    assert "Consistency is 0% at every radius" in flat
