import copy

from vaelab.report import beta_summary, quality_table, report_readme, target_checks


def judged(fd, rec):
    return {"fd_clf": fd, "is_clf": 3.0, "recognisable": rec, "mean_confidence": 0.6,
            "class_histogram": {"cat": 1.0}}


def model(mse, kl, units, sharp, fd_prior, fd_gmm, rec, beta=1.0):
    return {"test_neg_elbo": -2000.0, "test_bpd": 6.5 + 3 * mse, "test_recon_nll": -2100.0, "test_recon_mse": mse,
            "test_kl": kl, "active_units": units, "latent_dim": 128, "sample_sharpness": sharp,
            "fd_clf_recon": 1.0, "recognisable_recon": 0.5, "beta": beta, "epochs": 40, "train_seconds": 900.0,
            "samplers": {"prior": judged(fd_prior, rec), "gmm": judged(fd_gmm, rec * 1.5)}}


METRICS = {
    "fc": model(0.012, 90.0, 100, 0.30, 40.0, 35.0, 0.05),
    "conv": model(0.006, 200.0, 120, 0.45, 20.0, 15.0, 0.20),
    "conv_beta5": model(0.011, 60.0, 40, 0.30, 25.0, 22.0, 0.10, beta=5.0),
    "reference": {"real_train": judged(0.5, 0.80), "noise": judged(300.0, 0.0), "blurred": judged(30.0, 0.1)},
    "evaluator_accuracy": 0.88, "evaluated_images": 10000,
}


def test_summary_quotes_the_measured_numbers_within_300_words():
    text = beta_summary(METRICS)
    assert len(text.split()) <= 300
    assert "raised the per-pixel MSE from 0.006 to 0.011" in text
    assert "lowered the KL to the prior from 200 nats to 60 nats" in text
    assert "from 120 to 40 of 128" in text
    assert "switching off 80 latent dimensions" in text and "blurrier" in text


def test_summary_says_no_clear_effect_when_the_numbers_barely_move():
    same = copy.deepcopy(METRICS)
    same["conv_beta5"] = copy.deepcopy(same["conv"]) | {"beta": 5.0}
    text = beta_summary(same)
    assert text.count("had no clear effect") >= 4
    assert "do not show the usual trade-off" in text


def test_quality_table_ranks_by_fd_clf_and_targets_are_checked():
    table = quality_table(METRICS).splitlines()
    assert "reference: real train" in table[2] and "reference: noise" in table[-1]
    checks = "\n".join(target_checks(METRICS))
    assert "met: conv fd_clf at most 0.6x the FC VAE's: 20.00 vs 0.6 x 40.00" in checks
    assert "met: conv recognisable at least 2x" in checks
    assert "**missed**: conv recognisable at least half the real images' rate" in checks
    assert "met: conv: the GMM sampler lowers fd_clf" in checks
    readme = report_readme(METRICS, beta_summary(METRICS))
    assert "| conv | 1 |" in readme and "88.0% test accuracy" in readme


def beta_study(mse, mig, dci, tc=(30.0, 12.0)):
    """reports/metrics_beta.json as the render stage reads it: per-beta shapes numbers (beta = 1, 2, 5, 10)."""
    shapes = {label: {"recon_mse": m, "mig": g, "dci": d} for label, m, g, d in zip(("1", "2", "5", "10"), mse, mig, dci)}
    return {"shapes": shapes, "cifar10": {"1": {"gaussian_tc": tc[0]}, "5": {"gaussian_tc": tc[1]}},
            "compared": {"low": "1", "high": "5"}}


TRADE_OFF = beta_study(mse=(0.00123, 0.00156, 0.00211, 0.00305), mig=(0.081, 0.102, 0.143, 0.112),
                       dci=(0.213, 0.254, 0.312, 0.281))


def test_summary_with_shapes_answers_on_both_datasets_within_300_words():
    text = beta_summary(METRICS, TRADE_OFF)
    assert len(text.split()) <= 300
    assert "raised the per-pixel MSE from 0.006 to 0.011" in text  # CIFAR-10, as before
    assert "lowered the Gaussian total correlation of the code from 30 nats to 12 nats" in text
    assert "MSE 0.00123, 0.00156, 0.00211, 0.00305; MIG 0.08, 0.10, 0.14, 0.11; DCI 0.21, 0.25, 0.31, 0.28" in text
    assert "raised MIG from 0.08 to 0.14 and raised DCI from 0.21 to 0.31" in text
    assert "reconstruction got worse, and the code was more disentangled" in text
    assert "cannot be measured on CIFAR-10" not in text and "For scale, the fully connected VAE" not in text


def test_summary_with_shapes_says_no_clear_effect_and_stays_within_300_words():
    # The longest wording: every CIFAR number flat, shapes flat, large numbers.
    same = copy.deepcopy(METRICS)
    same["conv_beta5"] = copy.deepcopy(same["conv"]) | {"beta": 5.0}
    flat = beta_study(mse=(0.0123456,) * 4, mig=(0.123456, 0.13, 0.14, 0.15), dci=(0.3, 0.3, 0.32, 0.31),
                      tc=(31.0, 31.5))
    text = beta_summary(same, flat)
    assert len(text.split()) <= 300
    assert "had no clear effect on MIG (0.12 vs 0.14)" in text and "had no clear effect on DCI (0.30 vs 0.32)" in text
    assert "no clear effect on reconstruction, and no clear effect on disentanglement" in text
    assert "had no clear effect on the Gaussian total correlation of the code" in text
    mixed = beta_study(mse=(0.001, 0.001, 0.002, 0.003), mig=(0.3, 0.3, 0.1, 0.1), dci=(0.2, 0.2, 0.4, 0.4))
    assert "MIG and DCI disagree" in beta_summary(METRICS, mixed)


def test_report_lists_the_beta_study_figures_and_theory():
    readme = report_readme(METRICS, beta_summary(METRICS, TRADE_OFF), TRADE_OFF)
    for figure in ("beta_tradeoff.png", "interpolation_smoothness.png", "autoencoder_vs_vae_shapes.png",
                   "traversals_shapes_beta1.png", "traversals_shapes_beta10.png"):
        assert f"](figures/{figure})" in readme
    assert "[theory.md](theory.md)" in readme and "## What beta = 5 changed" in readme


def test_a_long_sweep_keeps_the_summary_within_300_words():
    same = copy.deepcopy(METRICS)
    same["conv_beta5"] = copy.deepcopy(same["conv"]) | {"beta": 5.0}
    labels = ("0.25", "0.5", "1", "2", "3", "5", "7.5", "10", "20", "50")
    study = {"shapes": {label: {"recon_mse": 0.0123456 * (1 + i), "mig": 0.1 + 0.01 * i, "dci": 0.3}
                        for i, label in enumerate(labels)},
             "cifar10": {"1": {"gaussian_tc": 31.0}, "5": {"gaussian_tc": 31.5}}, "compared": {"low": "0.25", "high": "5"}}
    text = beta_summary(same, study)
    assert len(text.split()) <= 300
    assert "beta = 5 against 0.25 raised the MSE from 0.0123 to 0.0741" in text
