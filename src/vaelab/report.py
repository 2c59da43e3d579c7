"""The `render` stage: figures, the beta summary and the report, all from the measured numbers.

Every number in summary.md and README.md is read from reports/metrics.json (and the beta study's
reports/metrics_beta.json) at render time, and
every comparison word ("raised", "no clear effect") is chosen from those numbers, so the text
stays true when a rerun changes them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch

from . import figures
from .params import MODEL_NAMES
from .sample_quality import sample_codes

REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
CLEAR_CHANGE = 0.05  # relative changes below 5% are reported as "no clear effect"
CLEAR_SCORE = 0.05  # MIG and DCI lie in [0, 1]: absolute changes below 0.05 are "no clear effect"
# Report sections written by other stages (their figure links are relative to reports/), appended in order.
EXTRA_SECTIONS = (REPORTS / "faces" / "report.md",)


def _change(before: float, after: float, what: str, unit: str = "", digits: int = 3,
            tolerance: float = CLEAR_CHANGE) -> str:
    """'raised <what> from a to b (x1.8)' or 'had no clear effect on <what> (a vs b)'."""
    fmt = f"{{:.{digits}g}}"
    a, b = fmt.format(before) + unit, fmt.format(after) + unit
    if before == 0 or abs(after - before) / abs(before) < tolerance:
        return f"had no clear effect on {what} ({a} vs {b})"
    verb = "raised" if after > before else "lowered"
    return f"{verb} {what} from {a} to {b} (x{after / before:.2f})"


def _score_change(before: float, after: float, what: str) -> str:
    """Like `_change`, for scores in [0, 1] (MIG, DCI), where a relative change says little near 0."""
    if abs(after - before) < CLEAR_SCORE:
        return f"had no clear effect on {what} ({before:.2f} vs {after:.2f})"
    return f"{'raised' if after > before else 'lowered'} {what} from {before:.2f} to {after:.2f}"


def shapes_summary(beta_metrics: dict, every_beta: bool = True) -> list[str]:
    """The shapes half of the summary: reconstruction against MIG and DCI as beta rose; with
    `every_beta` False only the compared pair (a long sweep would not fit in 300 words)."""
    shapes = beta_metrics["shapes"]
    labels = sorted(shapes, key=float)
    low, high = beta_metrics["compared"]["low"], beta_metrics["compared"]["high"]
    a, b = shapes[low], shapes[high]
    row = lambda key, fmt: ", ".join(fmt.format(shapes[label][key]) for label in labels)  # noqa: E731
    rises = [key for key in ("mig", "dci") if b[key] - a[key] >= CLEAR_SCORE]
    falls = [key for key in ("mig", "dci") if a[key] - b[key] >= CLEAR_SCORE]
    organisation = ("MIG and DCI disagree" if rises and falls else "the code was more disentangled" if rises else
                    "the code was less disentangled" if falls else "no clear effect on disentanglement")
    cost = ("reconstruction got worse" if b["recon_mse"] > a["recon_mse"] * (1 + CLEAR_CHANGE) else
            "reconstruction got better" if b["recon_mse"] < a["recon_mse"] * (1 - CLEAR_CHANGE) else
            "no clear effect on reconstruction")
    sweep = (f", beta = {', '.join(labels)} gave MSE {row('recon_mse', '{:.3g}')}; MIG {row('mig', '{:.2f}')}; "
             f"DCI {row('dci', '{:.2f}')}. "
             if every_beta else ": ")
    return [
        f"**On shapes, where the factors are known** (`reports/metrics_beta.json`, `figures/beta_tradeoff.png`)"
        f"{sweep}beta = {high} against {low} "
        f"{_change(a['recon_mse'], b['recon_mse'], 'the MSE')}, {_score_change(a['mig'], b['mig'], 'MIG')} and "
        f"{_score_change(a['dci'], b['dci'], 'DCI')}: {cost}, and {organisation}.",
    ]


def beta_summary(metrics: dict, beta_metrics: dict | None = None) -> str:
    """At most 300 words on what beta = 5 changed relative to beta = 1: on CIFAR-10 (conv against
    conv_beta5) and, given the numbers of reports/metrics_beta.json, on shapes, where
    disentanglement can be measured."""
    one, five = metrics["conv"], metrics["conv_beta5"]
    fc = metrics["fc"]
    p1, p5 = one["samplers"]["prior"], five["samplers"]["prior"]
    beta = f"{five['beta']:g}"
    lines = [
        f"# What beta = {beta} changed",
        "",
        f"The same convolutional VAE, trained for {one['epochs']} (beta = 1) and {five['epochs']} (beta = {beta}) "
        "epochs on CIFAR-10; only the weight on the KL term differs. Test-set numbers from `reports/metrics.json`.",
        "",
        f"- **Reconstruction.** beta = {beta} {_change(one['test_recon_mse'], five['test_recon_mse'], 'the per-pixel MSE')}.",
        f"- **Information in the code.** It {_change(one['test_kl'], five['test_kl'], 'the KL to the prior', ' nats')}; "
        f"active latent units went from {one['active_units']} to {five['active_units']} of {five['latent_dim']}.",
        f"- **Likelihood bound** (bits/dim, lower is better). It "
        f"{_change(one['test_bpd'], five['test_bpd'], 'the bound', '', 4, tolerance=0.01)}.",
        f"- **Sample sharpness** (mean absolute Laplacian of prior samples over that of real images): it "
        f"{_change(one['sample_sharpness'], five['sample_sharpness'], 'sharpness')}.",
        f"- **Realism, judged by the evaluator classifier** (prior samples): it "
        f"{_change(p1['fd_clf'], p5['fd_clf'], 'fd_clf')} (lower is better) and "
        f"{_change(p1['recognisable'], p5['recognisable'], 'the share recognised with confidence >= 0.9')}.",
        "",
    ]
    traded = five["test_recon_mse"] > one["test_recon_mse"] * (1 + CLEAR_CHANGE) and five["test_kl"] < one["test_kl"]
    if traded:
        verdict = f"In short, beta = {beta} paid with reconstruction detail for a smaller code"
        if five["active_units"] < one["active_units"]:
            verdict += f", switching off {one['active_units'] - five['active_units']} latent dimensions"
        if five["sample_sharpness"] < one["sample_sharpness"] * (1 - CLEAR_CHANGE):
            verdict += ", and its samples are blurrier"
        verdict += "."
    else:
        verdict = ("These numbers do not show the usual trade-off (more reconstruction error for a smaller KL); "
                   "look at the figures before drawing conclusions.")
    if beta_metrics is None:
        if traded:
            verdict += (" Whether the remaining dimensions are more independent cannot be measured on CIFAR-10, "
                        "which has no ground-truth factors; compare `figures/traversals_conv.png` and "
                        "`figures/traversals_conv_beta5.png` by eye.")
        lines += [verdict, "",
                  f"For scale, the fully connected VAE: {fc['test_bpd']:.3f} bits/dim, MSE {fc['test_recon_mse']:.4f}, "
                  f"prior-sample fd_clf {fc['samplers']['prior']['fd_clf']:.1f}."]
    else:  # the shapes numbers answer the independence question; the FC line makes room for them
        cifar = beta_metrics["cifar10"]
        tc_one, tc_five = cifar[f"{one['beta']:g}"]["gaussian_tc"], cifar[beta]["gaussian_tc"]
        verdict += (f" CIFAR-10 has no ground-truth factors; beta = {beta} "
                    f"{_change(tc_one, tc_five, 'the Gaussian total correlation of the code', ' nats')} "
                    "(linear dependence between its dims).")
        lines += [verdict, ""]
        text = "\n".join(lines + shapes_summary(beta_metrics)) + "\n"
        if len(text.split()) <= 300:
            return text
        lines += shapes_summary(beta_metrics, every_beta=False)
    return "\n".join(lines) + "\n"


def metrics_table(metrics: dict) -> str:
    columns = [("test_neg_elbo", "-ELBO (nats/img)", "{:.1f}"), ("test_bpd", "bits/dim", "{:.3f}"),
               ("test_recon_mse", "recon MSE", "{:.5f}"), ("test_kl", "KL (nats/img)", "{:.1f}"),
               ("active_units", "active units", "{}"), ("sample_sharpness", "sample sharpness", "{:.2f}"),
               ("epochs", "epochs", "{}"), ("train_seconds", "train min", "{:.1f}")]
    rows = ["| model | beta | " + " | ".join(title for _, title, _ in columns) + " |",
            "|---|---|" + "---|" * len(columns)]
    for name in MODEL_NAMES:
        m = metrics[name]
        cells = [fmt.format(m[key] / 60 if key == "train_seconds" else m[key]) for key, _, fmt in columns]
        rows.append(f"| {name} | {m['beta']:g} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def quality_table(metrics: dict) -> str:
    """Every scored image set, ranked by fd_clf (lower is closer to real test images)."""
    entries = []
    for name in MODEL_NAMES:
        for sampler, row in metrics[name]["samplers"].items():
            entries.append((f"{name}, {sampler} samples", row))
        entries.append((f"{name}, test reconstructions", {"fd_clf": metrics[name]["fd_clf_recon"],
                                                          "recognisable": metrics[name]["recognisable_recon"]}))
    entries += [(f"reference: {ref.replace('_', ' ')}", row) for ref, row in metrics["reference"].items()]
    entries.sort(key=lambda entry: entry[1]["fd_clf"])
    rows = ["| rank | images | fd_clf | is_clf | recognisable | mean confidence |", "|---|---|---|---|---|---|"]
    for rank, (label, row) in enumerate(entries, 1):
        extra = " | ".join(f"{row[k]:.3f}" if k in row else "" for k in ("is_clf", "recognisable", "mean_confidence"))
        rows.append(f"| {rank} | {label} | {row['fd_clf']:.2f} | {extra} |")
    return "\n".join(rows)


def target_checks(metrics: dict) -> list[str]:
    """The sample-quality targets, each marked met or missed from the numbers."""
    fc, conv = metrics["fc"]["samplers"]["prior"], metrics["conv"]["samplers"]["prior"]
    real = metrics["reference"]["real_train"]["recognisable"]
    checks = [
        (conv["fd_clf"] <= 0.6 * fc["fd_clf"],
         f"conv fd_clf at most 0.6x the FC VAE's: {conv['fd_clf']:.2f} vs 0.6 x {fc['fd_clf']:.2f}"),
        (conv["recognisable"] >= 2 * fc["recognisable"],
         f"conv recognisable at least 2x the FC VAE's: {conv['recognisable']:.3f} vs 2 x {fc['recognisable']:.3f}"),
        (conv["recognisable"] >= 0.5 * real,
         f"conv recognisable at least half the real images' rate: {conv['recognisable']:.3f} vs 0.5 x {real:.3f}"),
    ]
    for name in MODEL_NAMES:
        prior, gmm = metrics[name]["samplers"]["prior"]["fd_clf"], metrics[name]["samplers"]["gmm"]["fd_clf"]
        checks.append((gmm < prior, f"{name}: the GMM sampler lowers fd_clf: {gmm:.2f} vs prior {prior:.2f}"))
    lines = [f"- {'met' if ok else '**missed**'}: {text}" for ok, text in checks]
    if conv["recognisable"] < 0.5 * real:
        blurred, noise = metrics["reference"]["blurred"], metrics["reference"]["noise"]
        lines.append(f"\nWhy the real-image rate is out of reach here: blur alone drops real images from "
                     f"{real:.3f} to {blurred['recognisable']:.3f} recognisable (fd_clf "
                     f"{blurred['fd_clf']:.0f}), and a Gaussian-decoder VAE's samples are blurry by construction; "
                     f"the judge also labels {noise['recognisable']:.3f} of pure noise with confidence >= 0.9, so "
                     "off the data manifold its confidence is a weak signal and fd_clf is the number to trust.")
    return lines


def beta_study_figures(beta_metrics: dict) -> list[tuple[str, str]]:
    """The figures of the shapes beta study (drawn by its own stages), with captions."""
    shapes = sorted(beta_metrics["shapes"], key=float)
    low, high = beta_metrics["compared"]["low"], beta_metrics["compared"]["high"]
    return [
        ("beta_tradeoff.png", "Shapes and CIFAR-10: reconstruction MSE, MIG/DCI and KL against beta "
                              "(autoencoder dotted)."),
        ("interpolation_smoothness.png", "Largest over mean step between decoded frames along latent paths: "
                                         "autoencoder vs every beta."),
        ("autoencoder_vs_vae_shapes.png", f"Autoencoder vs beta = {low} and {high}: prior samples and an "
                                          "interpolation between two test images."),
        *[(f"traversals_shapes_beta{label}.png", f"Shapes VAE, beta = {label}: each active latent dimension swept "
                                                  "(shapes.evaluate.traversal_span), labelled with the factor it "
                                                  "carries most.")
          for label in shapes],
    ]


def report_readme(metrics: dict, summary: str, beta_metrics: dict | None = None,
                  extra_sections: list[str] = ()) -> str:
    figure_list = [
        ("curves.png", "Training curves: objective, reconstruction NLL and KL per epoch (train solid, test dashed), "
                       "and test bits/dim."),
        ("samples_fc.png", "Fully connected VAE: 16 samples decoded from z ~ N(0, I)."),
        ("samples_conv.png", "Convolutional VAE (beta = 1): 16 samples from N(0, I)."),
        ("samples_conv_beta5.png", "Convolutional beta-VAE (beta = 5): 16 samples from N(0, I)."),
        ("fc_vs_conv.png", "FC vs conv: samples from the same codes, and reconstructions of the same test images."),
        ("beta_comparison.png", "beta = 1 vs beta = 5: samples, reconstructions, and the KL of each latent dimension."),
        ("reconstructions.png", "Test images and their reconstructions by each model."),
        ("interpolation_prior_conv.png", "Conv VAE: 10-step straight lines between random codes z1, z2 ~ N(0, I)."),
        ("interpolation_images_conv.png", "Conv VAE: 10 steps between the codes of two real test images of "
                                          "different classes (originals at the ends)."),
        ("traversals_conv.png", "Conv VAE (beta = 1): the highest-KL latent dimensions swept from -3 to +3."),
        ("traversals_conv_beta5.png", "Conv beta-VAE (beta = 5): the same traversal."),
        ("samples_labelled_conv.png", "Conv VAE prior samples with the evaluator classifier's label and confidence."),
        ("samplers_conv.png", "Conv VAE: the prior N(0, I) vs the Gaussian mixture fitted to the training codes."),
    ]
    parts = ["# vaelab report: VAEs on CIFAR-10", "",
             "Generated by `dvc repro` (stage `render`) from `reports/metrics.json`; do not edit by hand. "
             "Sample sharpness is the mean absolute Laplacian of the prior samples divided by that of real "
             "test images. The -ELBO is a single-sample bound with beta = 1 for every model, so all rows "
             "compare; bits/dim include the 8-bit dequantisation correction.", "",
             f"## Metrics (test set, {metrics['evaluated_images']:,} images)", "", metrics_table(metrics), "",
             "## Do the samples look like objects? (evaluator classifier)", "",
             f"A CIFAR-10 classifier trained by the `train_evaluator` stage ({metrics['evaluator_accuracy']:.1%} "
             f"test accuracy) judges {metrics['evaluated_images']:,} images per row against as many test images. `fd_clf` is the "
             "Frechet distance between its penultimate features of the two sets: the formula of FID, but not "
             "FID, and not comparable with published Inception FIDs (a different, smaller network trained on "
             "CIFAR-10 itself, other feature scale). `is_clf` is the Inception-Score analogue from its "
             "predictions (1 to 10), `recognisable` the share labelled with confidence >= 0.9, probabilities "
             f"temperature-scaled on the test set (T = {metrics.get('evaluator_temperature', 1.0):.2f}) because the "
             "classifier trains with label smoothing, which caps its raw confidence. Samplers: "
             "`prior` draws z ~ N(0, I); `gmm` draws from a Gaussian mixture fitted to the training set's "
             "posterior means. Reference rows show the scale: real training images (the floor), Gaussian "
             "noise, and blurred real images (what a blurry but right model looks like).", "",
             quality_table(metrics), "", "Targets:", "", *target_checks(metrics), "",
             summary.replace("# What beta", "## What beta", 1), "## Figures", ""]
    if beta_metrics is not None:
        figure_list += beta_study_figures(beta_metrics)
        parts[-2:-2] = ["The four theory questions, answered with this study's numbers: [theory.md](theory.md).", ""]
    for file, caption in figure_list:
        parts += [f"**{file}**: {caption}", "", f"![{file}](figures/{file})", ""]
    return "\n".join(parts + list(extra_sections))


def _read_curves(name: str) -> list[dict]:
    with open(REPORTS / "curves" / f"{name}.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def run_render(params: dict) -> list[Path]:
    """Draw every figure, write summary.md and README.md, and attach the figures to the MLflow runs."""
    import mlflow

    from . import tracking
    from .checkpoints import load_model
    from .data import load_dataset
    from .evaluate import SAMPLERS_DIR
    from .evaluator import load_classifier, predict
    from .runtime import resolve_device

    device = resolve_device(params["device"])
    tracking.check_tracking_server()
    data = params["data"]
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    metrics = json.loads((REPORTS / "metrics.json").read_text())
    beta_metrics = json.loads((REPORTS / "metrics_beta.json").read_text())
    latent_kl = json.loads((REPORTS / "latent_kl.json").read_text())
    models = {name: load_model(Path("models") / name, device)[0] for name in MODEL_NAMES}
    FIGURES.mkdir(parents=True, exist_ok=True)
    seed = params["seed"]
    generator = torch.Generator().manual_seed(seed)
    latent = models["conv"].latent_dim
    z = torch.randn(16, latent, generator=generator)
    picks = torch.randperm(len(dataset["x_test"]), generator=generator)[:8]
    test_images = dataset["x_test"][picks]
    steps = params["render"]["interpolation_steps"]

    made: dict[str, list[str]] = {name: [] for name in MODEL_NAMES}  # figure -> the runs it belongs to

    def out(file: str, *owners: str) -> Path:
        for owner in owners:
            made[owner].append(file)
        return FIGURES / file

    figures.plot_curves({name: _read_curves(name) for name in MODEL_NAMES}, out("curves.png", *MODEL_NAMES))
    for name, model in models.items():
        codes = z if model.latent_dim == latent else torch.randn(16, model.latent_dim, generator=generator)
        figures.save_samples(model, codes, out(f"samples_{name}.png", name))
    figures.plot_prior_interpolation(models["conv"], generator, out("interpolation_prior_conv.png", "conv"),
                                     steps=steps)
    figures.plot_image_interpolation(models["conv"], dataset["x_test"], dataset["y_test"], dataset["classes"],
                                     generator, out("interpolation_images_conv.png", "conv"), steps=steps)
    figures.plot_reconstructions(models, test_images, out("reconstructions.png", *MODEL_NAMES))
    # Different latent sizes cannot share codes; each model then decodes its own draws from N(0, I).
    fc_z = z if models["fc"].latent_dim == latent else torch.randn(16, models["fc"].latent_dim, generator=generator)
    figures.plot_side_by_side(("fc", models["fc"], fc_z), ("conv", models["conv"], z), test_images,
                              out("fc_vs_conv.png", "fc", "conv"))
    figures.plot_side_by_side(("beta = 1", models["conv"], z), ("beta = 5", models["conv_beta5"], z), test_images,
                              out("beta_comparison.png", "conv", "conv_beta5"),
                              kl_per_dim={"conv": latent_kl["conv"], "conv_beta5": latent_kl["conv_beta5"]})
    for name in ("conv", "conv_beta5"):
        figures.plot_traversals(models[name], test_images[0], latent_kl[name], out(f"traversals_{name}.png", name),
                                dims=params["render"]["traversal_dims"], span=params["render"]["traversal_span"],
                                name=name)

    judge = load_classifier(Path("models/evaluator"), device)
    z_labelled = torch.randn(36, latent, generator=generator)
    labelled = figures.decode(models["conv"], z_labelled)
    figures.plot_labelled_samples(labelled, predict(judge, labelled, device)[1] / metrics["evaluator_temperature"],
                                  dataset["classes"],
                                  out("samples_labelled_conv.png", "conv"))
    gmm = dict(np.load(SAMPLERS_DIR / "conv.npz"))
    figures.plot_samplers(models["conv"], {"prior N(0, I)": z_labelled,
                                           "Gaussian mixture on training codes": sample_codes("gmm", 36, latent, seed, gmm)},
                          out("samplers_conv.png", "conv"))

    summary = beta_summary(metrics, beta_metrics)
    (REPORTS / "summary.md").write_text(summary)
    extra_sections = [path.read_text() for path in EXTRA_SECTIONS if path.is_file()]
    (REPORTS / "README.md").write_text(report_readme(metrics, summary, beta_metrics, extra_sections))
    for name in MODEL_NAMES:
        with tracking.reopen_run(Path("models") / name, params["mlflow"]["experiment"], name):
            for file in made[name]:
                mlflow.log_artifact(str(FIGURES / file), artifact_path="figures")
            mlflow.log_artifact(str(REPORTS / "summary.md"))
    return sorted(FIGURES.glob("*.png"))

