import math

import numpy as np
import pytest
import torch

from vaelab.evaluator import Classifier, augment, load_classifier, predict, save_classifier
from vaelab.sample_quality import (classifier_score, fit_latent_gmm, fit_temperature, frechet_distance,
                                   recognisability, sample_codes)

CLASSES = [f"c{i}" for i in range(10)]


def test_identical_feature_sets_are_at_distance_zero():
    features = torch.randn(2000, 8, generator=torch.Generator().manual_seed(0))
    assert abs(frechet_distance(features, features.clone())) < 1e-6


def test_shifted_and_scaled_gaussians_give_the_analytic_distance():
    # N(0, I) vs N(m, s^2 I) in d dims: |m|^2 + d (1 + s^2 - 2 s) = |m|^2 + d (1 - s)^2.
    g = torch.Generator().manual_seed(1)
    d, shift, scale = 6, 2.0, 3.0
    a = torch.randn(200_000, d, generator=g, dtype=torch.float64)
    b = shift + scale * torch.randn(200_000, d, generator=g, dtype=torch.float64)
    expected = d * shift ** 2 + d * (1 - scale) ** 2
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.01)


def test_a_uniform_prediction_classifier_scores_one():
    assert classifier_score(torch.zeros(1000, 10)) == pytest.approx(1.0, abs=1e-6)


def test_confident_balanced_predictions_score_the_class_count():
    logits = torch.full((1000, 10), -50.0)
    logits[torch.arange(1000), torch.arange(1000) % 10] = 50.0
    assert classifier_score(logits, splits=1) == pytest.approx(10.0, rel=1e-4)


def test_recognisability_and_histogram():
    logits = torch.zeros(4, 10)
    logits[0, 3] = 10.0  # confident "c3"
    logits[1, 3] = 1.0   # weakly "c3"
    row = recognisability(logits, CLASSES)
    assert row["recognisable"] == 0.25
    assert row["class_histogram"]["c3"] == 0.5  # argmax of the two all-zero rows is class 0
    assert math.isclose(sum(row["class_histogram"].values()), 1.0)


def test_gmm_sampler_reproduces_the_training_codes_distribution():
    g = torch.Generator().manual_seed(0)
    codes = torch.cat([torch.randn(500, 3, generator=g) * 0.1 + 4, torch.randn(500, 3, generator=g) * 0.1 - 4])
    gmm = fit_latent_gmm(codes, components=2, seed=0)
    samples = sample_codes("gmm", 2000, 3, seed=1, gmm=gmm)
    assert samples.shape == (2000, 3) and samples.dtype == torch.float32
    assert torch.allclose(samples.abs().mean(0), torch.full((3,), 4.0), atol=0.1)  # modes at +-4, not 0
    assert torch.equal(samples, sample_codes("gmm", 2000, 3, seed=1, gmm=gmm))
    assert sample_codes("prior", 5, 3, seed=1).shape == (5, 3)


def test_augment_translates_and_flips_whole_batches():
    images = torch.arange(2 * 32 * 32 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(2, 32, 32, 3)
    out = augment(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.dtype == torch.uint8
    for original, moved in zip(images, out):  # each output is a shifted, maybe mirrored copy
        found = False
        for flip in (False, True):
            source = torch.flip(original, dims=[1]) if flip else original
            padded = torch.nn.functional.pad(source, (0, 0, 4, 4, 4, 4))
            for dy in range(9):
                for dx in range(9):
                    found |= torch.equal(padded[dy:dy + 32, dx:dx + 32], moved)
        assert found


def test_evaluator_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Classifier(width=4).eval()
    model.mean.fill_(0.4)
    save_classifier(tmp_path / "evaluator", model, {"epochs": 1})
    loaded = load_classifier(tmp_path / "evaluator")
    x = torch.rand(6, 3, 32, 32)
    features, logits = predict(model, x, torch.device("cpu"))
    features2, logits2 = predict(loaded, x, torch.device("cpu"))
    assert features.shape == (6, model.num_features) and logits.shape == (6, 10)
    assert torch.equal(logits, logits2) and torch.equal(features, features2)
    assert np.isclose(loaded.mean.mean().item(), 0.4)


def test_temperature_scaling_recovers_the_calibrating_temperature():
    g = torch.Generator().manual_seed(0)
    true_logits = 3 * torch.randn(20000, 10, generator=g)
    labels = torch.multinomial(true_logits.softmax(1), 1, generator=g).squeeze(1)
    # Logits shrunk by 2 (under-confident, as after label smoothing): the fitted T is ~1/2.
    assert fit_temperature(true_logits / 2, labels) == pytest.approx(0.5, rel=0.05)
    assert fit_temperature(true_logits, labels) == pytest.approx(1.0, rel=0.05)
