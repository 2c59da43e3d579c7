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
