"""The report's Markdown tables: CIFAR-10 metrics and sample quality, the beta study's table and
its per-factor table."""

from __future__ import annotations

from .sweep import mean_pm

# (key, title, format) of the metrics tables (the faces table shows the first six) and beta table.
METRIC_COLUMNS = [
    ("test_neg_elbo", "-ELBO (nats/img)", "{:.1f}"),
    ("test_bpd", "bits/dim", "{:.3f}"),
    ("test_recon_mse", "recon MSE", "{:.5f}"),
    ("test_kl", "KL (nats/img)", "{:.1f}"),
    ("active_units", "active units", "{}"),
    ("sample_sharpness", "sample sharpness", "{:.2f}"),
    ("epochs", "epochs", "{}"),
    ("train_seconds", "train min", "{:.1f}"),
]
BETA_COLUMNS = [
    ("recon_mse", "recon MSE", "{:.4f}"),
    ("kl", "KL (nats/img)", "{:.1f}"),
    ("active_units", "active units", "{:.1f}"),
    ("mig", "MIG", "{:.3f}"),
    ("factor_vae", "FactorVAE score", "{:.2f}"),
    ("gaussian_tc", "Gaussian TC (nats)", "{:.2f}"),
    ("prior_relative_error", "prior-sample error vs blank", "{:.2f}"),
    ("path_max_over_mean", "path max/mean step", "{:.2f}"),
]


def titles(columns: list[tuple[str, str, str]]) -> list[str]:
    return [title for _, title, _ in columns]


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def cells(m: dict, columns: list[tuple[str, str, str]], show=str.format) -> list[str]:
    """m's value under each (key, title, format) column as show(format, value); else "n/a"."""
    return [
        "n/a"
        if m.get(key) is None
        else show(fmt, m[key] / 60 if key == "train_seconds" else m[key])
        for key, _, fmt in columns
    ]


def faces_table(m: dict) -> str:
    """A faces run's metrics, up to sample sharpness."""
    shown = {**m, "active_units": f"{m['active_units']} of {m['latent_dim']}"}
    return markdown_table(titles(METRIC_COLUMNS[:6]), [cells(shown, METRIC_COLUMNS[:6])])


def metrics_table(cifar: dict) -> str:
    return markdown_table(
        ["run", "beta", *titles(METRIC_COLUMNS)],
        [[name, f"{m['beta']:g}", *cells(m, METRIC_COLUMNS)] for name, m in cifar.items()],
    )


def quality_table(cifar: dict, reference: dict) -> str:
    """Every scored image set, ranked by fd_clf (lower is closer to real test images)."""
    entries = []
    for name, m in cifar.items():
        entries += [(f"{name}, {sampler} samples", row) for sampler, row in m["samplers"].items()]
        entries.append((f"{name}, test reconstructions", m["reconstructions"]))
    entries += [(f"reference: {ref.replace('_', ' ')}", row) for ref, row in reference.items()]
    entries.sort(key=lambda entry: entry[1]["fd_clf"])
    keys = ("class_min", "class_max", "recognisable", "sharpness")
    return markdown_table(
        ["rank", "images", "fd_clf", "judge accuracy", "smallest class", "largest class"]
        + ["confident", "sharpness vs real"],
        [
            [str(rank), label, f"{row['fd_clf']:.2f}"]
            + [f"{row['accuracy']:.3f}" if "accuracy" in row else ""]
            + [f"{row[key]:.3f}" for key in keys]
            for rank, (label, row) in enumerate(entries, 1)
        ],
    )


def beta_table(study: dict) -> str:
    """Per shapes model, the `spread` of each number over its seeds as mean ± sd."""
    models = [(f"VAE, beta = {label}", row) for label, row in study["shapes_spread"].items()]
    models.append(("autoencoder (no KL)", study["autoencoder_spread"]))
    return markdown_table(
        ["shapes model", *titles(BETA_COLUMNS)],
        [
            [label, *cells(m, BETA_COLUMNS, lambda fmt, stats: mean_pm(stats, fmt))]
            for label, m in models
        ],
    )


def factor_table(study: dict, shown: list[str]) -> str:
    """Per factor, at the betas `shown`: MIG (mean ± sd over seeds) and the latent carrying most of
    it in the first seed with that latent's share of the entropy."""
    factors = study["factors"]

    def cell(stats: dict) -> str:
        return (
            f"{mean_pm(stats['mig'], '{:.2f}')} / z{stats['carrier'][0]} "
            f"({stats['carrier_mi']['values'][0]:.2f})"
        )

    return markdown_table(
        ["factor", *(f"beta = {label}" for label in shown)],
        [[name, *(cell(factors[label][name]) for label in shown)] for name in factors[shown[0]]],
    )
