"""The `render` stage: figures, the beta summary and the report, all from the measured numbers.

Every number in summary.md and README.md is read from reports/metrics.json at render time, and
every comparison word ("raised", "no clear effect") is chosen from those numbers, so the text
stays true when a rerun changes them.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from . import figures
from .params import MODEL_NAMES

REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
CLEAR_CHANGE = 0.05  # relative changes below 5% are reported as "no clear effect"


def _change(before: float, after: float, what: str, unit: str = "", digits: int = 3,
            tolerance: float = CLEAR_CHANGE) -> str:
    """'raised <what> from a to b (x1.8)' or 'had no clear effect on <what> (a vs b)'."""
    fmt = f"{{:.{digits}g}}"
    a, b = fmt.format(before) + unit, fmt.format(after) + unit
    if before == 0 or abs(after - before) / abs(before) < tolerance:
        return f"had no clear effect on {what} ({a} vs {b})"
    verb = "raised" if after > before else "lowered"
    return f"{verb} {what} from {a} to {b} (x{after / before:.2f})"


def beta_summary(metrics: dict) -> str:
    """At most 300 words on what beta = 5 changed relative to beta = 1 (both conv VAEs)."""
    one, five = metrics["conv"], metrics["conv_beta5"]
    fc = metrics["fc"]
    lines = [
        "# What beta = 5 changed",
        "",
        f"Both models are the same convolutional VAE trained for {one['epochs']} and {five['epochs']} epochs on "
        "CIFAR-10; only the weight on the KL term differs (beta = 1 vs beta = 5). Numbers are on the "
        f"{'test set'} and come from `reports/metrics.json`.",
        "",
        f"- **Reconstruction.** beta = 5 {_change(one['test_recon_mse'], five['test_recon_mse'], 'the per-pixel reconstruction MSE')}.",
        f"- **Information in the code.** It {_change(one['test_kl'], five['test_kl'], 'the KL to the prior', ' nats')}, "
        f"and the active latent units went from {one['active_units']} to {five['active_units']} of {five['latent_dim']}.",
        f"- **Likelihood bound** (bits/dim, lower is better). It "
        f"{_change(one['test_bpd'], five['test_bpd'], 'the bound', '', 4, tolerance=0.01)}; beta = 5 optimises "
        "a looser objective, so a worse bound is the expected price.",
        f"- **Sample sharpness** (mean absolute Laplacian of 1,000 prior samples relative to real images, 1.0 = as "
        f"sharp as real): it {_change(one['sample_sharpness'], five['sample_sharpness'], 'sharpness')}.",
        "",
    ]
    if five["test_recon_mse"] > one["test_recon_mse"] * (1 + CLEAR_CHANGE) and five["test_kl"] < one["test_kl"]:
        verdict = ("A stronger pull towards the prior made the code carry less information: fewer "
                   "dimensions stay active, reconstructions lose detail and samples blur. What beta = 5 buys is a "
                   "more compact code whose remaining dimensions each vary more of the image (see "
                   "`figures/traversals_conv_beta5.png`); on CIFAR-10, without ground-truth factors, that is "
                   "an observation, not a disentanglement measurement.")
    else:
        verdict = ("The numbers above do not show the usual trade-off (more reconstruction error for a smaller "
                   "KL); see the figures before drawing conclusions.")
    lines += [verdict, "",
              f"For scale: the fully connected VAE reaches {fc['test_bpd']:.3f} bits/dim and MSE "
              f"{fc['test_recon_mse']:.4f}, against {one['test_bpd']:.3f} and {one['test_recon_mse']:.4f} "
              "for the convolutional one at beta = 1."]
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


def report_readme(metrics: dict, summary: str) -> str:
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
    ]
    parts = ["# vaelab report: VAEs on CIFAR-10", "",
             "Generated by `dvc repro` (stage `render`) from `reports/metrics.json`; do not edit by hand. "
             "Sample sharpness is the mean absolute Laplacian of 1,000 prior samples divided by that of real "
             "test images. The -ELBO is a single-sample bound with beta = 1 for every model, so all rows "
             "compare; bits/dim include the 8-bit dequantisation correction.", "",
             "## Metrics (test set, 10,000 images)" if metrics["fc"] else "", "", metrics_table(metrics), "",
             summary.replace("# What beta = 5 changed", "## What beta = 5 changed"), "## Figures", ""]
    for file, caption in figure_list:
        parts += [f"**{file}**: {caption}", "", f"![{file}](figures/{file})", ""]
    return "\n".join(parts)


def _read_curves(name: str) -> list[dict]:
    with open(REPORTS / "curves" / f"{name}.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def run_render(params: dict) -> list[Path]:
    """Draw every figure, write summary.md and README.md, and attach the figures to the MLflow runs."""
    import mlflow

    from . import tracking
    from .checkpoints import load_model
    from .data import load_dataset
    from .runtime import resolve_device

    device = resolve_device(params["device"])
    tracking.check_tracking_server()
    data = params["data"]
    dataset = load_dataset(Path(data["path"]), data["train_limit"], data["test_limit"])
    metrics = json.loads((REPORTS / "metrics.json").read_text())
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

    summary = beta_summary(metrics)
    (REPORTS / "summary.md").write_text(summary)
    (REPORTS / "README.md").write_text(report_readme(metrics, summary))
    for name in MODEL_NAMES:
        with tracking.reopen_run(Path("models") / name, params["mlflow"]["experiment"], name):
            for file in made[name]:
                mlflow.log_artifact(str(FIGURES / file), artifact_path="figures")
            mlflow.log_artifact(str(REPORTS / "summary.md"))
    return sorted(FIGURES.glob("*.png"))

