"""The report's text is chosen by its numbers; render writes exactly the figures it links."""

import copy
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import image_cells, seeded
from vaelab import betas, compare, report, store, tables, templates, wording
from vaelab.errors import VaelabError
from vaelab.quality import sample_quality
from vaelab.sweep import FACTOR_KEYS, mean_pm, spread

PAIR, BASELINE = ["conv", "conv_beta5"], "fc"
ROLES = {"cifar": ["fc", "conv", "conv_beta5"], "pair": PAIR, "baseline": BASELINE}
CLASSES = ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


def judged(fd, rec, accuracy=None):
    row = dict(fd_clf=fd, recognisable=rec)
    row |= dict(mean_confidence=0.6, sharpness=0.5, class_min=0.1, class_max=0.1)
    row["class_histogram"] = dict.fromkeys(CLASSES, 0.1)
    return row if accuracy is None else row | {"accuracy": accuracy}


def run(mse, kl, units, sharp, fd_prior, fd_gmm, rec, beta=1.0):
    """A run as the report sees it: its evaluation merged with its sample-quality numbers."""
    return {
        **dict(test_neg_elbo=-2000.0, test_bpd=6.5 + 3 * mse, test_recon_nll=-2100.0),
        **dict(test_recon_mse=mse, test_kl=kl, active_units=units, latent_dim=128),
        # `units` dims carry the KL, the rest are switched off (below wording.USED_DIM_NATS).
        "kl_per_dim": [kl / units] * units + [0.01] * (128 - units),
        **dict(sample_sharpness=sharp, beta=beta, epochs=40, train_seconds=900.0),
        "model": {"arch": "conv", "widths": [64, 128], "latent_dim": 64},
        "reconstructions": judged(1.0, 0.5, accuracy=0.65),
        "samplers": {"prior": judged(fd_prior, rec), "gmm": judged(fd_gmm, rec * 1.5)},
    }


CIFAR = {
    "fc": run(0.012, 90.0, 100, 0.30, 40.0, 35.0, 0.05),
    "conv": run(0.006, 200.0, 120, 0.45, 20.0, 15.0, 0.20),
    "conv_beta5": run(0.011, 60.0, 40, 0.30, 25.0, 22.0, 0.10, beta=5.0),
}
QUALITY = {
    **dict(judge="evaluator", judge_holdout_accuracy=0.88, temperature=0.5),
    **dict(judge_training_images=45_000, calibration_images=5000, real_images=5000),
    **dict(scored_images=5000, sample_count=10000, blur_sigma=1.0),
    **dict(figure_sampler="gmm", gmm_components=10, gmm_covariance="full"),
    "reference": {
        "real_test": judged(0.5, 0.80, accuracy=0.87),
        "blurred": judged(10.0, 0.5, accuracy=0.8),
        "blurred_s2": judged(60.0, 0.4, accuracy=0.72),
        "down_up_x4": judged(50.0, 0.4, accuracy=0.69),
        "noise": judged(300.0, 0.01),
    },
}


def sentence(macro: str, *args) -> str:
    return templates.macro("macros.md.j2", macro)(*args)


def summary(cifar=CIFAR, study=None):
    return wording.beta_summary(cifar, PAIR, BASELINE, study)


def flat_pair():
    same = copy.deepcopy(CIFAR)
    same["conv_beta5"] = copy.deepcopy(same["conv"]) | {"beta": 5.0}
    return same


def test_the_cifar_summary_quotes_its_numbers_and_their_direction_within_300_words():
    text = summary()
    assert len(text.split()) <= 300
    assert "raised the per-pixel MSE from 0.006 to 0.011" in text
    assert "lowered the KL from 200 nats to 60 nats" in text
    assert "dims with at least 0.1 nats: 120 and 40 of 128" in text
    assert "switching off 80 latent dimensions" in text and "blurrier" in text
    assert "`figures/conv/traversals.png`" in text and "For scale, `fc`" in text
    better = copy.deepcopy(CIFAR)  # a flipped number flips its sentence
    better["conv_beta5"]["test_recon_mse"] = 0.004  # now below conv's 0.006
    text = summary(better)
    assert "lowered the per-pixel MSE from 0.006 to 0.004" in text
    assert "do not show the usual trade-off" in text
    better["conv_beta5"]["samplers"]["prior"]["fd_clf"] = 30.0
    assert "raised fd_clf from 20 to 30" in summary(better)
    text = summary(flat_pair())  # numbers that barely move: no clear effect
    assert text.count("had no clear effect") >= 4
    assert "do not show the usual trade-off" in text


def test_quality_table_ranks_by_fd_clf_and_the_best_sampler_spreads_its_classes():
    table = tables.quality_table(CIFAR, QUALITY["reference"]).splitlines()
    assert "| fd_clf | judge accuracy | smallest class | largest class |" in table[0]
    assert "reference: real test" in table[2] and "reference: noise" in table[-1]
    assert "| 0.50 | 0.870 | 0.100 | 0.100 | 0.800 | 0.500 |" in table[2]
    # both samplers spread their classes, so the best is the lower fd_clf: gmm
    assert wording.best_sampler(CIFAR["conv"]["samplers"]) == "gmm"
    spiky = copy.deepcopy(CIFAR)
    spiky["conv"]["samplers"]["gmm"]["class_max"] = 0.31  # the lower fd_clf, but one class 31%
    assert wording.best_sampler(spiky["conv"]["samplers"]) == "prior"
    spiky["conv"]["samplers"]["prior"]["class_min"] = 0.0  # neither spreads: the larger rarest
    assert wording.best_sampler(spiky["conv"]["samplers"]) == "gmm"
    readme = wording.report_readme(CIFAR, QUALITY, summary(), [])
    assert "| conv | 1 |" in readme and "accuracy on them 88.0%" in readme
    assert "Every run trained for the same 40 epochs" in readme  # budget_sentence
    assert "nor the last 5,000 training images, whose labels fit its temperature" in readme
    assert "It trains on the first 45,000 training images" in readme
    assert "Test labels only score" in readme
    assert (
        "`conv` (conv 64-128 (8x8 map), 64-d code; 40 epochs, 15.0 min): gmm, 30.0% of its samples"
        in readme
    )
    assert "fd_clf 15.0, 1.5 x the blurred real images'" in readme
    assert "every class has at least 3% and none more than 20% of the samples" in readme


def test_the_budget_and_set_size_sentences_follow_the_epochs_and_sizes():
    assert sentence("budget_sentence", CIFAR).startswith(
        "Every run trained for the same 40 epochs over the same images: an equal-epoch comparison"
    )
    shorter = copy.deepcopy(CIFAR)
    shorter["conv"]["epochs"] = 20
    assert sentence("budget_sentence", shorter) == (
        "The runs trained for different numbers of epochs (fc 40, conv 20, conv_beta5 40): not an "
        "equal budget."
    )
    equal = sentence("set_size_sentence", {**QUALITY, "sample_count": 5000})
    assert "Every row, sampler or reference, has 5,000 images" in equal
    unequal = sentence("set_size_sentence", QUALITY)  # 10,000 samples against 5,000 real images
    assert "fd_clf compares 10,000 samples with 5,000 real images" in unequal


FACTORS = ("shape", "hue", "scale", "rotation", "x position", "y position")


def factor_rows(mig: float, hue_gain: float) -> dict:
    """Per factor, three equal seeds: every factor at `mig` but hue, which gains `hue_gain`;
    latent k carries factor k."""
    rows = {}
    for k, name in enumerate(FACTORS):
        seed = {"mig": mig + (hue_gain if name == "hue" else 0.0), "carrier_mi": 0.5}
        rows[name] = {**spread([seed] * 3, FACTOR_KEYS), "carrier": [k] * 3}
    return rows


def beta_study(mse, mig, tc=(30.0, 12.0), labels=("1", "2", "5", "10"), low="1"):
    """reports/metrics_beta.json as render reads it: per beta three equal seeds, the FactorVAE
    score equal to MIG, the KL falling with beta, sharpness with MSE."""
    shapes = {
        label: {
            **dict(recon_mse=m, mig=g, factor_vae=g),
            **dict(kl=30.0 / (1 + i), sample_sharpness=0.001 / m),
        }
        for i, (label, m, g) in enumerate(zip(labels, mse, mig, strict=True))
    }
    convergence = {"epochs": 10, "steps": 4240, "batch_size": 32}
    study = seeded(
        {
            "shapes": shapes,
            "shapes_autoencoder": {"recon_mse": 0.001, "mig": 0.05, "factor_vae": 0.05},
            "cifar10": {"1": {"gaussian_tc": tc[0]}, "5": {"gaussian_tc": tc[1]}},
            "compared": {"low": low, "high": "5"},
            **dict(factor_information_nats=9.65, likelihood="gaussian_fixed"),
            "likelihood_sigma": 0.1,
            "factors": {  # hue alone carries the six-factor MIG's gain over the first beta (x6)
                label: factor_rows(mig[0], 6 * (g - mig[0]))
                for label, g in zip(labels, mig, strict=True)
            },
            "steps": dict.fromkeys([*labels, "autoencoder"], 4240),
            "convergence": {
                f"shapes_b{label}/s{seed}": convergence
                | {"test_mse_last_fifth_change": -0.01 * (seed + 1)}
                for label in labels
                for seed in range(3)
            },
            "figures": {"beta_sweep": "figures/beta_study/beta_sweep.png"},
        }
    )
    study["best_beta"] = max(labels, key=lambda label: study["shapes_spread"][label]["mig"]["mean"])
    return study


MSE = (0.00123, 0.00156, 0.00211, 0.00305)
TRADE_OFF = beta_study(MSE, mig=(0.081, 0.102, 0.143, 0.112))


def test_summary_with_shapes_answers_on_both_datasets_within_300_words():
    text = summary(study=TRADE_OFF)
    assert len(text.split()) <= 300
    assert "raised the per-pixel MSE from 0.006 to 0.011" in text  # CIFAR-10, as before
    assert "lowered the Gaussian total correlation of the code from 30 nats to 12 nats" in text
    assert "(3 seeds x 4,240 steps, mean±sd, last-fifth MSE change <= 3%;" in text
    assert "MSE 0.00123, 0.00156, 0.00211, 0.00305; KL 30, 15, 10, 8 nats; MIG 0.08, 0.10" in text
    assert "MIG was highest at beta = 5: against beta = 1, the KL fell 30.0±0.0→10.0±0.0" in text
    assert "the MSE rose 0.00123±0.00000→0.00211±0.00000" in text
    assert "sample sharpness fell 0.81±0.00→0.47±0.00" in text
    assert "MIG rose 0.081±0.000→0.143±0.000 (x1.8)" in text
    assert "per factor: hue 0.08→0.45 (z1); no clear change for shape, scale, rotation, x" in text
    assert "Beta = 10 (MIG 0.11, MSE 0.00305) was not clearly below: no measurable turn." in text
    assert "At sigma 0.1 a squared pixel error costs 50 (Bernoulli: ~2)" in text
    assert "MIG first clearly exceeded beta = 1's at beta = 5" in text
    assert "`figures/beta_study/beta_sweep.png`" in text
    turned = beta_study(MSE, mig=(0.08, 0.10, 0.25, 0.11))
    text = summary(study=turned)
    assert "Above it the trade-off turns: at beta = 10, MIG 0.11, MSE 0.00305." in text
    assert len(text.split()) <= 300


def test_summary_with_shapes_says_no_clear_effect_when_flat_or_in_the_spread_even_when_long():
    flat = beta_study((0.0123456,) * 4, (0.123456, 0.13, 0.14, 0.15), tc=(31.0, 31.5))
    text = summary(flat_pair(), flat)
    assert len(text.split()) <= 300
    assert "MIG was highest at beta = 10: against beta = 1," in text
    assert "no clear change in MIG (0.123±0.000 vs 0.150±0.000)" in text
    assert "no clear change in the MSE" in text
    assert "no clear change for shape, scale, rotation, x position, y position" in text
    assert "had no clear effect on the Gaussian total correlation of the code" in text
    assert "MIG was highest at the highest beta (10): no turn within the sweep." in text
    assert "no beta's MIG clearly exceeded beta = 1's" in text
    wide = seeded(TRADE_OFF, jitter={"mig": 0.1, "factor_vae": 0.1})
    text = summary(study=wide)
    assert "no clear change in MIG (0.081±0.100 vs 0.143±0.100)" in text
    assert "no beta's MIG clearly exceeded beta = 1's" in text and "no measurable turn" in text
    long_sweep = beta_study(
        mse=[0.0123456 * (1 + i) for i in range(10)],
        mig=[0.1 + 0.01 * i for i in range(10)],
        tc=(31.0, 31.5),
        labels=("0.25", "0.5", "1", "2", "3", "5", "7.5", "10", "20", "50"),
        low="0.25",
    )
    text = summary(flat_pair(), long_sweep)
    assert len(text.split()) <= 300
    assert "Beta = 5 against 0.25: the KL fell 30.0±0.0→5.0±0.0" in text
    assert "MIG was highest at beta = 50: against beta = 0.25, the KL fell" in text
    assert "the MSE rose 0.01235±0.00000→0.12346±0.00000" in text


def curve(test, train):
    return [
        {"epoch": e, "test_neg_elbo": a, "train_neg_elbo": b}
        for e, (a, b) in enumerate(zip(test, train, strict=True), 1)
    ]


def test_the_curves_give_where_the_test_loss_was_lowest():
    falling = curve([-100.0, -110.0, -120.0], [-101.0, -112.0, -125.0])
    falling = sentence("fit_sentence", wording.fit(falling))
    assert "still at its lowest in the last epoch (-120.0 nats at epoch 3)" in falling
    rising = curve([-100.0, -120.0, -115.0], [-101.0, -125.0, -140.0])
    rising = sentence("fit_sentence", wording.fit(rising))
    assert "lowest at epoch 2 (-120.0 nats) and rose to -115.0" in rising
    assert "gap went from 5.0 to 25.0 nats: the model overfits after epoch 2" in rising


FACES_EVAL = {
    **dict(test_neg_elbo=-9000.0, test_bpd=5.1, test_recon_mse=0.004, test_kl=150.0),
    **dict(active_units=60, latent_dim=128, sample_sharpness=0.5, epochs=3, test_images=100),
    "arch": "conv",
}
# What evaluate@<run> draws in reports/figures/<run>/.
RUN_FIGURES = (
    *("samples.png", "reconstructions.png", "interpolation_prior.png", "traversals.png"),
    "interpolation_images.png",
)


def fake_run_outputs(params):
    """What evaluate@<run> and train@<run> write, beyond what the project fixture holds."""
    store.write_json(store.eval_path("faces"), FACES_EVAL)
    store.write_json(store.eval_path("evaluator"), {"test_accuracy": 0.93})
    for name in params["runs"]:
        rows = [
            dict(epoch=e, train_loss=10.0 - e, test_loss=11.0 - e, train_kl=5.0 + e)
            | dict(epoch_seconds=60.0, test_kl=5.5 + e, test_mse=0.01 / e)
            for e in (1, 2, 3)
        ]
        store.write_curves(store.curves_path(name), rows)
        for file in RUN_FIGURES if name != "evaluator" else ():
            store.atomic_write(
                store.figures_dir(name) / file, lambda tmp: Path(tmp).write_bytes(b"png")
            )


def test_render_takes_its_runs_from_params_links_exactly_its_figures_and_names_what_is_missing(
    project, figures, capsys
):
    params = project["params"]
    assert report.roles(params) == {
        **ROLES,
        "shapes": [f"shapes_b{beta}/s0" for beta in (1, 5, 16, 64, 256)],
        "autoencoder": "shapes_ae/s0",
        "faces": ["faces"],
    }
    fake_run_outputs(params)
    quality, study = sample_quality(params), betas.beta_study(params)
    capsys.readouterr()
    written = report.render(params)
    said = capsys.readouterr().out
    assert all(f"wrote {path}" in said for path in written[:-2])  # each figure as it is drawn
    assert f"wrote {report.SUMMARY} and {report.README}" in said
    readme = Path("reports/README.md").read_text()
    listed = [path for _, path, _ in report.figure_list(params, quality, study)]
    linked = re.findall(r"!\[[^]]*\]\(([^)]+)\)", readme)
    assert sorted(linked) == sorted(listed) and len(set(listed)) == len(listed)
    assert all((store.REPORTS / path).is_file() for path in listed)
    for key in ("curves", "shapes_curves", "faces_curves", "baseline_vs_pair", "beta_comparison"):
        assert store.figures_dir("compare") / report.COMPARE_FIGURES[key] in written
    summary_md = Path("reports/summary.md").read_text()
    assert summary_md in readme.replace("## What beta", "# What beta", 1)
    assert "[theory.md](theory.md)" in readme and "## Faces (CelebA)" in readme
    assert "| -9000.0 | 5.100 | 0.00400 | 150.0 | 60 of 128 | 0.50 |" in readme
    # minutes from the curves
    assert "| fc | 1 | -2000.0 |" in readme and readme.count("| 2 | 3.0 |") == 3
    assert "`faces` for 3 epochs (3.0 min)" in readme
    mse = mean_pm(study["shapes_spread"]["5"]["recon_mse"], "{:.4f}")
    assert f"| VAE, beta = 5 | {mse} |" in readme
    # The figures hold what they claim: curves of every run, image grids side by side.
    curves = figures["curves.png"]
    plotted = {line.get_label() for ax in curves.axes for line in ax.get_lines()}
    assert {"fc train", "conv test", "conv_beta5 train"} <= plotted
    assert all(np.isfinite(line.get_ydata()).all() for ax in curves.axes for line in ax.get_lines())
    assert len(image_cells(figures["fc_vs_conv.png"])) == 2
    kl_panel = figures["beta_comparison.png"].axes[2]
    assert len(kl_panel.patches) == 2 * 3  # one bar per latent dim of each of the two runs
    # A missing figure: the error names the stage that draws it, a run's or a sweep's.
    for owner, stage in (
        ("conv_beta5", "evaluate@conv_beta5"),
        ("shapes_b16/s0", "evaluate_sweep@shapes_b16"),
    ):
        figure = store.figures_dir(owner) / "traversals.png"
        figure.unlink()
        with pytest.raises(
            VaelabError,
            match=rf"reports/figures/{owner}/traversals.png is missing; .*dvc repro {stage}$",
        ):
            report.render(params)
        figure.write_bytes(b"png")
    quality = store.read_json(compare.SAMPLE_QUALITY)
    del quality["runs"]["conv_beta5"]
    store.write_json(compare.SAMPLE_QUALITY, quality)
    with pytest.raises(VaelabError, match="no numbers for conv_beta5; rerun the sample_quality"):
        report.render(params)
