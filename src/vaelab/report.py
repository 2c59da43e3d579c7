"""The `render` stage: the cross-run figures, reports/summary.md and reports/README.md.

Every number in the text is read at render time from what the other stages wrote
(reports/eval/<run>.json, reports/sample_quality.json, reports/metrics_beta.json, the curves), and
every comparison word ("raised", "no clear effect", "met") is chosen from the numbers it cites, so
the text stays true when a rerun changes them. `figure_list` is the one list of the report's
figures: the README links exactly those, and render checks that each exists.
"""

from __future__ import annotations

from pathlib import Path

import torch

from . import datasets, plots, store
from .compare import METRICS_BETA, SAMPLE_QUALITY, load_run_model, read_eval
from .config import compare_config, evaluate_config, run_config
from .errors import VaelabError
from .runtime import resolve_device
from .theory import CLEAR_CHANGE, clear_change

SUMMARY = store.REPORTS / "summary.md"
README = store.REPORTS / "README.md"
RECOGNISED = "the share recognised with confidence >= 0.9"
CLEAR_SCORE = 0.05  # MIG and DCI lie in [0, 1]: absolute changes below 0.05 are "no clear effect"
# The figures render draws, in reports/figures/compare/.
COMPARE_FIGURES = {
    "curves": "curves.png",
    "faces_curves": "faces_curves.png",
    "shapes_curves": "shapes_curves.png",
    "baseline_vs_pair": "fc_vs_conv.png",
    "beta_comparison": "beta_comparison.png",
}
# What evaluate@<run> draws in reports/figures/<run>/; a faces run also draws its latent tour.
RUN_FIGURES = (
    "samples.png",
    "reconstructions.png",
    "interpolation_prior.png",
    "interpolation_images.png",
    "traversals.png",
)
ARCH_NAMES = {"conv": "convolutional", "fc": "fully connected"}
FACES_TOUR_FIGURES = {
    "shells.png": "Codes at radius r x sqrt(d) in random directions, one row per r, with the "
    "re-encoding consistency of that shell.",
    "neighbourhoods.png": "Around the codes of real test faces: random codes at increasing "
    "distance.",
    "attributes.png": "Attribute directions (mean code with minus without) added to the codes of "
    "test faces.",
    "samplers.png": "The prior N(0, I) vs a Gaussian mixture fitted to the training codes.",
}
CELEBA_TERMS = (
    'CelebA (Liu et al., "Deep Learning Face Attributes in the Wild", ICCV 2015) is '
    "licensed for non-commercial research purposes only; these faces, the trained model and its "
    "samples must not be used commercially."
)


# --- who is who ----------------------------------------------------------------------------------


def roles(params: dict) -> dict:
    """The runs each part of the report is about, from params.yaml: `cifar` (judged by the
    sample-quality stage), `pair` (its beta pair), `baseline` (the other judged run, compared with
    the pair's first), `shapes` and `autoencoder` (the beta study), `faces` (VAEs on CelebA)."""
    quality, study = compare_config(params, "sample_quality"), compare_config(params, "beta_study")
    pair = list(study["cifar_pair"])
    if len(pair) != 2 or any(run not in quality["runs"] for run in pair):
        raise VaelabError(
            "compare.beta_study.cifar_pair must name two runs of compare.sample_quality.runs (got "
            f"{pair}); fix it in params.yaml"
        )
    others = [run for run in quality["runs"] if run not in pair]
    if not others:
        raise VaelabError(
            "compare.sample_quality.runs must hold a run besides compare.beta_study.cifar_pair "
            "(the baseline drawn beside them); add one in params.yaml"
        )
    faces = [
        name
        for name, run in params["runs"].items()
        if run["objective"] == "vae" and params["datasets"][run["dataset"]]["source"] == "celeba"
    ]
    return {
        "cifar": list(quality["runs"]),
        "pair": pair,
        "baseline": others[0],
        "shapes": list(study["runs"]),
        "autoencoder": study["autoencoder"],
        "faces": faces,
    }


def describe(params: dict, run: str) -> str:
    """'conv_beta5 (conv VAE, beta = 5)'."""
    config = run_config(params, run)
    kind = {"vae": "VAE", "ae": "autoencoder", "classifier": "classifier"}[config["objective"]]
    beta = f", beta = {config['beta']:g}" if config["objective"] == "vae" else ""
    return f"`{run}` ({config['model']['arch']} {kind}{beta})"


def figure_list(params: dict, quality: dict, study: dict) -> list[tuple[str, str, str]]:
    """Every figure of the report as (section, path relative to reports/, caption); section is
    "cifar", "beta" or "faces"."""
    r = roles(params)
    one, five = r["pair"]
    compare = "figures/compare/"

    def run_figure(run: str, file: str) -> str:
        return f"figures/{run}/{file}"

    def settings(run: str) -> dict:
        return evaluate_config(params, run_config(params, run)["dataset"])

    steps = settings(one)["interpolation_steps"]
    out = [
        (
            "cifar",
            compare + COMPARE_FIGURES["curves"],
            "Training curves of the CIFAR-10 VAEs: objective, reconstruction NLL and KL per epoch "
            "(train solid, test dashed), and test bits/dim.",
        )
    ]
    out += [
        (
            "cifar",
            run_figure(run, "samples.png"),
            f"{describe(params, run)}: samples decoded from z ~ N(0, I).",
        )
        for run in r["cifar"]
    ]
    out += [
        (
            "cifar",
            compare + COMPARE_FIGURES["baseline_vs_pair"],
            f"`{r['baseline']}` vs `{one}`: samples from N(0, I), and reconstructions of the same "
            "test images.",
        ),
        (
            "cifar",
            compare + COMPARE_FIGURES["beta_comparison"],
            f"`{one}` vs `{five}`: samples, reconstructions, and the KL of each latent dimension.",
        ),
    ]
    out += [
        (
            "cifar",
            run_figure(run, "reconstructions.png"),
            f"{describe(params, run)}: test images and their reconstructions.",
        )
        for run in r["cifar"]
    ]
    out += [
        (
            "cifar",
            run_figure(one, "interpolation_prior.png"),
            f"`{one}`: {steps}-step straight lines between random codes z1, z2 ~ N(0, I).",
        ),
        (
            "cifar",
            run_figure(one, "interpolation_images.png"),
            f"`{one}`: {steps} steps between the codes of two real test images of different "
            "classes (originals at the ends).",
        ),
    ]
    out += [
        (
            "cifar",
            run_figure(run, "traversals.png"),
            f"{describe(params, run)}: the highest-KL latent dimensions swept from "
            f"-{settings(run)['traversal_span']:g} to +{settings(run)['traversal_span']:g}.",
        )
        for run in r["pair"]
    ]
    for run in r["cifar"]:
        out += [
            (
                "cifar",
                quality["figures"][run]["samples_labelled"],
                f"`{run}`: prior samples with the judge's label and confidence.",
            ),
            (
                "cifar",
                quality["figures"][run]["samplers"],
                f"`{run}`: the prior N(0, I) vs the Gaussian mixture fitted to the training codes.",
            ),
        ]

    low, high = study["compared"]["low"], study["compared"]["high"]
    out += [
        (
            "beta",
            study["figures"]["beta_tradeoff"],
            "Shapes and CIFAR-10: reconstruction MSE, MIG/DCI and KL against beta (autoencoder "
            "dotted).",
        ),
        (
            "beta",
            study["figures"]["interpolation_smoothness"],
            "Largest over mean step between decoded frames along latent paths: autoencoder vs "
            "every beta.",
        ),
        (
            "beta",
            study["figures"]["autoencoder_vs_vae"],
            f"Autoencoder vs beta = {low} and {high}: prior samples and an interpolation between "
            "two test images.",
        ),
        (
            "beta",
            compare + COMPARE_FIGURES["shapes_curves"],
            "Training curves of the shapes VAEs and the autoencoder.",
        ),
    ]
    out += [
        (
            "beta",
            run_figure(run, "traversals.png"),
            f"{describe(params, run)}: latent dimensions swept one at a time, each labelled with "
            "the factor it carries most.",
        )
        for run in r["shapes"]
    ]

    if r["faces"]:
        out.append(
            (
                "faces",
                compare + COMPARE_FIGURES["faces_curves"],
                "Faces training curves (train solid, test dashed).",
            )
        )
    for run in r["faces"]:
        out += [
            (
                "faces",
                run_figure(run, "samples.png"),
                f"`{run}`: samples decoded from z ~ N(0, I).",
            ),
            (
                "faces",
                run_figure(run, "reconstructions.png"),
                f"`{run}`: held-out test faces and their reconstructions.",
            ),
            (
                "faces",
                run_figure(run, "interpolation_prior.png"),
                f"`{run}`: straight lines between random codes z1, z2 ~ N(0, I).",
            ),
            (
                "faces",
                run_figure(run, "interpolation_images.png"),
                f"`{run}`: straight lines between the codes of two real test faces, decoded in "
                f"{settings(run)['interpolation_steps']} steps (the real faces at the ends).",
            ),
            (
                "faces",
                run_figure(run, "traversals.png"),
                f"`{run}`: the highest-KL latent dimensions swept one at a time.",
            ),
        ]
        # Faces without attributes (an image folder) have no attribute directions to draw.
        has_attributes = bool(store.read_json(store.eval_path(run)).get("attribute_edit"))
        out += [
            ("faces", run_figure(run, file), f"`{run}`: {caption}")
            for file, caption in FACES_TOUR_FIGURES.items()
            if file != "attributes.png" or has_attributes
        ]
    return out


def figure_lines(figures: list[tuple[str, str, str]], section: str) -> list[str]:
    lines = []
    for where, path, caption in figures:
        if where == section:
            name = Path(path).name
            lines += [
                f"**{path.removeprefix('figures/')}**: {caption}",
                "",
                f"![{name}]({path})",
                "",
            ]
    return lines


def producer(params: dict, path: str) -> str:
    """The stage that draws a figure of `figure_list`."""
    owner = Path(path).parts[1]
    return (
        f"evaluate@{owner}" if owner in params["runs"] else {"compare": "render"}.get(owner, owner)
    )


# --- the numbers-driven wording ------------------------------------------------------------------


def _change(
    before: float,
    after: float,
    what: str,
    unit: str = "",
    digits: int = 3,
    tolerance: float = CLEAR_CHANGE,
) -> str:
    """'raised <what> from a to b (x1.8)' or 'had no clear effect on <what> (a vs b)'."""
    fmt = f"{{:.{digits}g}}"
    a, b = fmt.format(before) + unit, fmt.format(after) + unit
    if not clear_change(before, after, tolerance):
        return f"had no clear effect on {what} ({a} vs {b})"
    verb = "raised" if after > before else "lowered"
    return f"{verb} {what} from {a} to {b} (x{after / before:.2f})"


def _score_change(before: float, after: float, what: str) -> str:
    """Like `_change`, for scores in [0, 1] (MIG, DCI), where a relative change says little
    near 0."""
    if abs(after - before) < CLEAR_SCORE:
        return f"had no clear effect on {what} ({before:.2f} vs {after:.2f})"
    return f"{'raised' if after > before else 'lowered'} {what} from {before:.2f} to {after:.2f}"


def shapes_summary(study: dict, every_beta: bool = True) -> list[str]:
    """The shapes half of the summary: reconstruction against MIG and DCI as beta rose; with
    `every_beta` False only the compared pair (a long sweep would not fit in 300 words)."""
    shapes = study["shapes"]
    labels = sorted(shapes, key=float)
    low, high = study["compared"]["low"], study["compared"]["high"]
    a, b = shapes[low], shapes[high]
    row = lambda key, fmt: ", ".join(fmt.format(shapes[label][key]) for label in labels)  # noqa: E731
    rises = [key for key in ("mig", "dci") if b[key] - a[key] >= CLEAR_SCORE]
    falls = [key for key in ("mig", "dci") if a[key] - b[key] >= CLEAR_SCORE]
    organisation = (
        "MIG and DCI disagree"
        if rises and falls
        else "the code was more disentangled"
        if rises
        else "the code was less disentangled"
        if falls
        else "no clear effect on disentanglement"
    )
    cost = (
        "reconstruction got worse"
        if b["recon_mse"] > a["recon_mse"] * (1 + CLEAR_CHANGE)
        else "reconstruction got better"
        if b["recon_mse"] < a["recon_mse"] * (1 - CLEAR_CHANGE)
        else "no clear effect on reconstruction"
    )
    sweep = (
        f", beta = {', '.join(labels)} gave MSE {row('recon_mse', '{:.3g}')}; MIG "
        f"{row('mig', '{:.2f}')}; DCI {row('dci', '{:.2f}')}. "
        if every_beta
        else ": "
    )
    return [
        "**On shapes, where the factors are known** (`reports/metrics_beta.json`, "
        f"`{study['figures']['beta_tradeoff']}`){sweep}beta = {high} against {low} "
        f"{_change(a['recon_mse'], b['recon_mse'], 'the MSE')}, "
        f"{_score_change(a['mig'], b['mig'], 'MIG')} and "
        f"{_score_change(a['dci'], b['dci'], 'DCI')}: {cost}, and {organisation}.",
    ]


def beta_summary(cifar: dict, pair: list[str], baseline: str, study: dict | None = None) -> str:
    """At most 300 words on what the pair's higher beta changed relative to its lower one: on
    CIFAR-10 (`cifar`: per run, its evaluation merged with its sample-quality numbers) and, given
    the beta study, on shapes, where disentanglement can be measured."""
    one, five = cifar[pair[0]], cifar[pair[1]]
    fc = cifar[baseline]
    p1, p5 = one["samplers"]["prior"], five["samplers"]["prior"]
    beta, beta_one = f"{five['beta']:g}", f"{one['beta']:g}"
    lines = [
        f"# What beta = {beta} changed",
        "",
        f"The same VAE, trained for {one.get('epochs', '?')} (beta = {beta_one}) and "
        f"{five.get('epochs', '?')} (beta = {beta}) epochs on CIFAR-10 (`{pair[0]}`, `{pair[1]}`); "
        "only the weight on the KL term differs. Test-set numbers from `reports/eval/`.",
        "",
        f"- **Reconstruction.** beta = {beta} "
        f"{_change(one['test_recon_mse'], five['test_recon_mse'], 'the per-pixel MSE')}.",
        "- **Information in the code.** It "
        f"{_change(one['test_kl'], five['test_kl'], 'the KL to the prior', ' nats')}; active "
        f"latent units went from {one['active_units']} to {five['active_units']} of "
        f"{five['latent_dim']}.",
        "- **Likelihood bound** (bits/dim, lower is better). It "
        f"{_change(one['test_bpd'], five['test_bpd'], 'the bound', '', 4, tolerance=0.01)}.",
        "- **Sample sharpness** (mean absolute Laplacian of prior samples over that of real "
        f"images): it {_change(one['sample_sharpness'], five['sample_sharpness'], 'sharpness')}.",
        "- **Realism, judged by the classifier** (prior samples): it "
        f"{_change(p1['fd_clf'], p5['fd_clf'], 'fd_clf')} (lower is better) and "
        f"{_change(p1['recognisable'], p5['recognisable'], RECOGNISED)}.",
        "",
    ]
    traded = (
        five["test_recon_mse"] > one["test_recon_mse"] * (1 + CLEAR_CHANGE)
        and five["test_kl"] < one["test_kl"] * (1 - CLEAR_CHANGE)  # the bullets' tolerance
    )
    if traded:
        verdict = f"In short, beta = {beta} paid with reconstruction detail for a smaller code"
        if five["active_units"] < one["active_units"]:
            switched_off = one["active_units"] - five["active_units"]
            verdict += f", switching off {plural(switched_off, 'latent dimension')}"
        if five["sample_sharpness"] < one["sample_sharpness"] * (1 - CLEAR_CHANGE):
            verdict += ", and its samples are blurrier"
        verdict += "."
    else:
        verdict = (
            "These numbers do not show the usual trade-off (more reconstruction error for a "
            "smaller KL); look at the figures before drawing conclusions."
        )
    if study is None:
        if traded:
            verdict += (
                " Whether the remaining dimensions are more independent cannot be measured on "
                "CIFAR-10, which has no ground-truth factors; compare "
                f"`figures/{pair[0]}/traversals.png` and `figures/{pair[1]}/traversals.png` by eye."
            )
        lines += [
            verdict,
            "",
            f"For scale, `{baseline}`: {fc['test_bpd']:.3f} bits/dim, MSE "
            f"{fc['test_recon_mse']:.4f}, prior-sample fd_clf "
            f"{fc['samplers']['prior']['fd_clf']:.1f}.",
        ]
    else:  # the shapes numbers answer the independence question; they take the baseline's room
        tc_one, tc_five = (
            study["cifar10"][beta_one]["gaussian_tc"],
            study["cifar10"][beta]["gaussian_tc"],
        )
        verdict += (
            f" CIFAR-10 has no ground-truth factors; beta = {beta} "
            f"{_change(tc_one, tc_five, 'the Gaussian total correlation of the code', ' nats')} "
            "(linear dependence between its dims)."
        )
        lines += [verdict, ""]
        text = "\n".join(lines + shapes_summary(study)) + "\n"
        if len(text.split()) <= 300:
            return text
        lines += shapes_summary(study, every_beta=False)
    return "\n".join(lines) + "\n"


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _cell(m: dict, key: str, fmt: str) -> str:
    if m.get(key) is None:
        return "n/a"
    return fmt.format(m[key] / 60 if key == "train_seconds" else m[key])


def metrics_table(cifar: dict) -> str:
    columns = [
        ("test_neg_elbo", "-ELBO (nats/img)", "{:.1f}"),
        ("test_bpd", "bits/dim", "{:.3f}"),
        ("test_recon_mse", "recon MSE", "{:.5f}"),
        ("test_kl", "KL (nats/img)", "{:.1f}"),
        ("active_units", "active units", "{}"),
        ("sample_sharpness", "sample sharpness", "{:.2f}"),
        ("epochs", "epochs", "{}"),
        ("train_seconds", "train min", "{:.1f}"),
    ]
    rows = [
        "| run | beta | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|---|" + "---|" * len(columns),
    ]
    for name, m in cifar.items():
        rows.append(
            f"| {name} | {m['beta']:g} | "
            + " | ".join(_cell(m, key, fmt) for key, _, fmt in columns)
            + " |"
        )
    return "\n".join(rows)


def quality_table(cifar: dict, reference: dict) -> str:
    """Every scored image set, ranked by fd_clf (lower is closer to real test images)."""
    entries = []
    for name, m in cifar.items():
        entries += [(f"{name}, {sampler} samples", row) for sampler, row in m["samplers"].items()]
        entries.append((f"{name}, test reconstructions", m["reconstructions"]))
    entries += [(f"reference: {ref.replace('_', ' ')}", row) for ref, row in reference.items()]
    entries.sort(key=lambda entry: entry[1]["fd_clf"])
    keys = ("is_clf", "recognisable", "mean_confidence", "sharpness")
    rows = [
        "| rank | images | fd_clf | is_clf | recognisable | mean confidence | sharpness vs real |",
        "|---|---|---|---|---|---|---|",
    ]
    for rank, (label, row) in enumerate(entries, 1):
        extra = " | ".join(f"{row[k]:.3f}" if k in row else "" for k in keys)
        rows.append(f"| {rank} | {label} | {row['fd_clf']:.2f} | {extra} |")
    return "\n".join(rows)


def target_checks(cifar: dict, reference: dict, pair: list[str], baseline: str) -> list[str]:
    """The sample-quality targets, each marked met or missed from the numbers."""
    name = pair[0]
    fc, conv = cifar[baseline]["samplers"]["prior"], cifar[name]["samplers"]["prior"]
    real = reference["real_test"]["recognisable"]
    checks = [
        (
            conv["fd_clf"] <= 0.6 * fc["fd_clf"],
            f"{name} fd_clf at most 0.6x {baseline}'s: {conv['fd_clf']:.2f} vs 0.6 x "
            f"{fc['fd_clf']:.2f}",
        ),
        (
            conv["recognisable"] >= 2 * fc["recognisable"],
            f"{name} recognisable at least 2x {baseline}'s: {conv['recognisable']:.3f} vs 2 x "
            f"{fc['recognisable']:.3f}",
        ),
        (
            conv["recognisable"] >= 0.5 * real,
            f"{name} recognisable at least half the real test images' rate: "
            f"{conv['recognisable']:.3f} vs 0.5 x {real:.3f}",
        ),
    ]
    for run, m in cifar.items():
        prior, gmm = m["samplers"]["prior"]["fd_clf"], m["samplers"]["gmm"]["fd_clf"]
        checks.append(
            (gmm < prior, f"{run}: the GMM sampler lowers fd_clf: {gmm:.2f} vs prior {prior:.2f}")
        )
    lines = [f"- {'met' if ok else '**missed**'}: {text}" for ok, text in checks]
    if conv["recognisable"] < 0.5 * real:
        blurred, noise = reference["blurred"], reference["noise"]
        # Each reason is stated only when the reference rows show it.
        reasons = []
        if blurred["recognisable"] < real * (1 - CLEAR_CHANGE):
            reasons.append(
                f"blur alone takes real test images from {real:.3f} to "
                f"{blurred['recognisable']:.3f} recognisable (fd_clf {blurred['fd_clf']:.0f}), "
                "and a Gaussian-decoder VAE's samples are blurry by construction"
            )
        if noise["recognisable"] > 0 and noise["recognisable"] >= conv["recognisable"] * (
            1 - CLEAR_CHANGE
        ):
            reasons.append(
                f"the judge labels {noise['recognisable']:.3f} of pure noise with confidence "
                ">= 0.9, as much as the samples, so off the data manifold its confidence is a "
                "weak signal and fd_clf is the number to trust"
            )
        if reasons:
            lines.append(
                "\nWhy the real-image rate is out of reach here: " + "; ".join(reasons) + "."
            )
    return lines


def beta_section(study: dict) -> list[str]:
    """The beta study's numbers as one table; the words are in summary.md and theory.md."""
    columns = [
        ("recon_mse", "recon MSE", "{:.5f}"),
        ("kl", "KL (nats/img)", "{:.1f}"),
        ("active_units", "active units", "{}"),
        ("mig", "MIG", "{:.3f}"),
        ("dci", "DCI", "{:.3f}"),
        ("gaussian_tc", "Gaussian TC (nats)", "{:.2f}"),
        ("prior_nn_mse", "prior-sample NN MSE", "{:.4f}"),
        ("path_max_over_mean", "path max/mean step", "{:.2f}"),
    ]
    rows = [
        "| shapes model | " + " | ".join(title for _, title, _ in columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    named = [(f"VAE, beta = {label}", row) for label, row in study["shapes"].items()]
    for label, m in [*named, ("autoencoder (no KL)", study["shapes_autoencoder"])]:
        rows.append(
            f"| {label} | " + " | ".join(_cell(m, key, fmt) for key, _, fmt in columns) + " |"
        )
    runs = study["runs"]
    return [
        "## The beta study (shapes, where the factors are known)",
        "",
        f"VAEs {', '.join(f'`{run}`' for run in runs['shapes'].values())} and the autoencoder "
        f"`{runs['autoencoder']}` on the shapes test set ({study['evaluation']['test_images']:,} "
        "images); numbers from `reports/metrics_beta.json`. The four theory questions, answered "
        "with these numbers: [theory.md](theory.md).",
        "",
        "\n".join(rows),
        "",
    ]


# --- faces ---------------------------------------------------------------------------------------


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _shell_sentence(consistency: dict[str, float], fd_codes: dict[str, float]) -> str:
    """Where along the radius the decoded codes look most like real faces, by both numbers."""
    best_fd = min(fd_codes, key=lambda r: fd_codes[r])
    farthest_fd = max(fd_codes, key=float)
    fd_part = (
        f"fd_codes is lowest (closest to real faces) at r = {best_fd} ({fd_codes[best_fd]:.2f}) "
        f"and {'rises' if fd_codes[farthest_fd] > fd_codes[best_fd] else 'stays'} to "
        f"{fd_codes[farthest_fd]:.2f} at r = {farthest_fd}."
    )
    if max(consistency.values()) == min(consistency.values()):
        return (
            f"Consistency is {_percent(next(iter(consistency.values())))} at every radius; "
            + fd_part
        )
    best = max(consistency, key=lambda r: consistency[r])
    farthest = max(consistency, key=float)
    return (
        f"Consistency is highest at r = {best} ({_percent(consistency[best])}) and is "
        f"{_percent(consistency[farthest])} at r = {farthest}; " + fd_part
    )


def faces_section(run: str, m: dict, figures: list[tuple[str, str, str]]) -> str:
    """The faces section of reports/README.md, from the faces run's evaluation only."""
    shells, distances = m["shells"], m["shell_reencoding_distance"]
    samplers = m["samplers"]
    prior, gmm = (
        samplers["prior"]["reencoding_consistency"],
        samplers["gmm"]["reencoding_consistency"],
    )
    trained = f" for {m['epochs']} epochs" if m.get("epochs") is not None else ""
    minutes = f" ({m['train_seconds'] / 60:.1f} min)" if m.get("train_seconds") is not None else ""
    lines = [
        f"## Faces (CelebA): a tour of the latent space of `{run}`",
        "",
        f"*{CELEBA_TERMS}*",
        "",
        f"A {ARCH_NAMES[m['arch']]} VAE trained as `{run}`{trained}{minutes} on "
        f"{m['train_images']:,} faces ({m['data_source']}), centre-cropped and resized to "
        f"{m['image_size']}x{m['image_size']}; the last {m['test_images']:,} faces are held out. "
        f"Numbers from `reports/eval/{run}.json`.",
        "",
        "| -ELBO (nats/img) | bits/dim | recon MSE | KL (nats/img) | active units | sample "
        "sharpness |",
        "|---|---|---|---|---|---|",
        f"| {m['test_neg_elbo']:.1f} | {m['test_bpd']:.3f} | {m['test_recon_mse']:.5f} | "
        f"{m['test_kl']:.1f} | {m['active_units']} of {m['latent_dim']} | "
        f"{m['sample_sharpness']:.2f} |",
        "",
        "### Shells: realism near and far from the origin",
        "",
        f"Codes at radius r x sqrt(d) (d = {m['latent_dim']}; N(0, I) puts its samples near r = "
        f"1), {m['tour_samples']:,} per shell in random directions. Each is decoded and the image "
        "encoded again; *consistency* is the share whose posterior mean lands back as close to "
        f"the code (RMS over the {m['reencoding_dimensions']} active dimensions"
        + (
            "; the decoder ignores the others"
            if m["reencoding_dimensions"] < m["latent_dim"]
            else ""
        )
        + ") as "
        f"{_percent(m['consistency_quantile'])} of real test faces' codes do (within "
        f"{m['consistency_threshold']:.3f}), so real faces score "
        f"{_percent(m['consistency_quantile'])}. *fd_codes* is a graded realism number: the "
        "Frechet distance between the encoder's posterior means of the decoded images and of the "
        "real test faces (the model judging itself, with the formula of FID but not FID; its own "
        f"reconstructions of real faces score {samplers['real_test']['fd_codes']:.2f}, lower is "
        "closer to real).",
        "",
        "| r | " + " | ".join(shells) + " |",
        "|---|" + "---|" * len(shells),
        "| consistency | " + " | ".join(_percent(v) for v in shells.values()) + " |",
        "| mean re-encoding distance | " + " | ".join(f"{v:.3f}" for v in distances.values()) + " "
        "|",
        "| fd_codes | " + " | ".join(f"{v:.2f}" for v in m["shell_fd_codes"].values()) + " |",
        "",
        _shell_sentence(shells, m["shell_fd_codes"]) + " r = 0 is a single code (the origin), so "
        "its consistency is all or nothing.",
        "",
        "### Neighbourhoods",
        "",
        "Random codes at a distance of t x sqrt(d) from the codes of real test faces; the pixel "
        "RMSE of their images from the face's reconstruction (0..1 scale), against the RMSE "
        "between reconstructions of two different test faces "
        f"({m['neighbourhoods']['between_faces_rmse']:.3f}):",
        "",
        "| t | " + " | ".join(m["neighbourhoods"]["pixel_rmse"]) + " |",
        "|---|" + "---|" * len(m["neighbourhoods"]["pixel_rmse"]),
        "| pixel RMSE | "
        + " | ".join(f"{v:.3f}" for v in m["neighbourhoods"]["pixel_rmse"].values())
        + " |",
        "",
    ]
    edits = m["attribute_edit"]
    if edits:
        strengths = list(next(iter(edits.values())))
        lines += [
            "### Attribute directions",
            "",
            "Direction = mean training code with the attribute minus mean code without, added at "
            f"strength s to the codes of {m['edited_faces']} test faces. The number is the linear "
            "probe's mean probability of the attribute on the re-encoded edited image (does the "
            "edit survive decoding?):",
            "",
            "| attribute | " + " | ".join(f"s = {s}" for s in strengths) + " |",
            "|---|" + "---|" * len(strengths),
        ]
        lines += [
            f"| {name} | " + " | ".join(f"{p:.2f}" for p in row.values()) + " |"
            for name, row in edits.items()
        ]
        lines.append("")
    probe = m["attribute_probe"]
    if probe:
        baseline = m["attribute_probe_baseline"]
        order = sorted(probe, key=lambda name: baseline[name] - probe[name])
        lines += [
            "### What the code holds: a linear probe per attribute",
            "",
            f"Logistic regression on the standardised posterior means of the {m['train_images']:,} "
            f"training faces, accuracy on the {m['test_images']:,} held-out faces, beside always "
            "answering the training majority class. Sorted by the gain over that baseline.",
            "",
            "| attribute | probe accuracy | majority baseline | gain |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {probe[name]:.3f} | {baseline[name]:.3f} | "
            f"{probe[name] - baseline[name]:+.3f} |"
            for name in order
        ]
        lines.append("")
    else:
        lines += [
            "The faces came without attributes, so there are no attribute directions or probes.",
            "",
        ]
    verb = (
        "raises"
        if gmm > prior * (1 + CLEAR_CHANGE)
        else "lowers"
        if gmm < prior * (1 - CLEAR_CHANGE)
        else "does not clearly change"
    )
    lines += [
        "### Prior holes: the prior vs a mixture fitted to the training codes",
        "",
        f"A {m['gmm_components']}-component Gaussian mixture fitted to the training set's "
        f"posterior means {verb} re-encoding consistency ({_percent(prior)} from N(0, I), "
        f"{_percent(gmm)} from the mixture; real faces "
        f"{_percent(samplers['real_test']['reencoding_consistency'])}) and takes fd_codes from "
        f"{samplers['prior']['fd_codes']:.2f} to {samplers['gmm']['fd_codes']:.2f}. Sharpness is "
        "the mean absolute Laplacian of the decoded images over that of real test faces.",
        "",
        "| codes | consistency | mean re-encoding distance | fd_codes | sharpness vs real |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {name.replace('_', ' ')} | {_percent(row['reencoding_consistency'])} | "
        f"{row['reencoding_distance']:.3f} | {row['fd_codes']:.2f} | {row['sharpness']:.2f} |"
        for name, row in samplers.items()
    ]
    run_figures = [
        entry
        for entry in figures
        if entry[1].startswith(f"figures/{run}/")
        or entry[1].endswith(COMPARE_FIGURES["faces_curves"])
    ]
    lines += ["", "### Figures", "", *figure_lines(run_figures, "faces")]
    return "\n".join(lines)


# --- the README ----------------------------------------------------------------------------------


def report_readme(
    r: dict,
    cifar: dict,
    quality: dict,
    summary: str,
    figures: list[tuple[str, str, str]],
    study: dict | None = None,
    faces: dict[str, dict] | None = None,
) -> str:
    """reports/README.md. `r`: `roles`; `cifar`: per judged run, its evaluation merged with its
    sample-quality numbers; `quality`: reports/sample_quality.json; `faces`: per faces run, its
    evaluation."""
    reference = quality["reference"]
    parts = [
        "# vaelab report",
        "",
        "Generated by `dvc repro` (stage `render`) from `reports/eval/`, "
        "`reports/sample_quality.json` and `reports/metrics_beta.json`; do not edit by hand. "
        "Sample sharpness is the mean absolute Laplacian of the prior samples divided by that of "
        "real test images. The -ELBO is a single-sample bound with beta = 1 for every run, so all "
        "rows compare; bits/dim include the 8-bit dequantisation correction.",
        "",
        "## CIFAR-10: metrics (test set)",
        "",
        metrics_table(cifar),
        "",
        f"## Do the samples look like objects? (the classifier `{quality['judge']}`)",
        "",
        f"A CIFAR-10 classifier trained as run `{quality['judge']}` judges "
        f"{quality['sample_count']:,} samples per sampler. The "
        f"{quality['calibration_images'] + quality['scored_images']:,} test images are split in "
        f"two halves. The first {quality['calibration_images']:,} are the real-image reference: "
        "every row's `fd_clf` is measured against their features, and their labels fit the "
        f"temperature (T = {quality['temperature']:.2f}; the judge's accuracy on them is "
        f"{quality['judge_accuracy']:.1%}). The other {quality['scored_images']:,}, whose labels "
        "are never used, are what the reference rows (real test images, Gaussian noise of their "
        "shape, the same images blurred) and the reconstructions are made of: no scored image "
        "trained the judge or fitted its temperature. `fd_clf` is the Frechet distance between "
        "the judge's penultimate features of the two sets: the formula of FID, but not FID, and "
        "not comparable with published Inception FIDs (a different, smaller network trained on "
        "CIFAR-10 itself, other feature scale). `is_clf` is the Inception-Score analogue from its "
        "predictions (1 to 10), `recognisable` the share labelled with confidence >= 0.9, "
        "probabilities temperature-scaled because the classifier trains with label smoothing, "
        "which caps its raw confidence. Samplers: `prior` draws z ~ N(0, I); `gmm` draws from a "
        "Gaussian mixture fitted to the training set's posterior means.",
        "",
        quality_table(cifar, reference),
        "",
        "Targets:",
        "",
        *target_checks(cifar, reference, r["pair"], r["baseline"]),
        "",
        summary.replace("# What beta", "## What beta", 1),
        "## CIFAR-10 figures",
        "",
        *figure_lines(figures, "cifar"),
    ]
    if study is not None:
        parts += [*beta_section(study), "### Figures", "", *figure_lines(figures, "beta")]
    for run, m in (faces or {}).items():
        parts += [faces_section(run, m, figures), ""]
    return "\n".join(parts).rstrip("\n") + "\n"


# --- the stage -----------------------------------------------------------------------------------


def cifar_view(
    params: dict, runs: list[str], evals: dict[str, dict], quality: dict
) -> dict[str, dict]:
    """Per judged run: its evaluation, its sample-quality numbers and its beta, in one dict."""
    missing = [run for run in runs if run not in quality["runs"]]
    if missing:
        raise VaelabError(
            f"{SAMPLE_QUALITY} has no numbers for {', '.join(missing)}; rerun the sample_quality "
            "stage (dvc repro sample_quality)"
        )
    return {
        run: {**evals[run], **quality["runs"][run], "beta": run_config(params, run)["beta"]}
        for run in runs
    }


def draw_comparisons(
    params: dict, r: dict, evals: dict[str, dict], histories: dict[str, list[dict]], device
) -> list[Path]:
    """The figures of reports/figures/compare/; `histories`: each run's training curves."""
    out = store.figures_dir("compare")
    path = {key: out / file for key, file in COMPARE_FIGURES.items()}

    def curves(runs: list[str]) -> dict[str, list[dict]]:
        return {run: histories[run] for run in runs}

    drawn = [
        path["curves"],
        path["shapes_curves"],
        path["baseline_vs_pair"],
        path["beta_comparison"],
    ]
    plots.plot_curves(curves(r["cifar"]), path["curves"])
    plots.plot_curves(curves([*r["shapes"], r["autoencoder"]]), path["shapes_curves"])
    if r["faces"]:
        plots.plot_curves(curves(r["faces"]), path["faces_curves"])
        drawn.append(path["faces_curves"])

    one, five, baseline = *r["pair"], r["baseline"]
    dataset = run_config(params, one)["dataset"]
    x_test = datasets.load(dataset, params["datasets"][dataset])["x_test"]
    generator = torch.Generator().manual_seed(params["render"]["seed"])
    images = x_test[torch.randperm(len(x_test), generator=generator)[:8]]
    models = {run: load_run_model(run, device) for run in (baseline, one, five)}
    shared = torch.randn(16, models[one].latent_dim, generator=generator)

    def codes(run: str) -> torch.Tensor:
        # Models of different latent sizes cannot share codes; each then decodes its own draws.
        latent = models[run].latent_dim
        return shared if latent == shared.shape[1] else torch.randn(16, latent, generator=generator)

    plots.plot_side_by_side(
        (baseline, models[baseline], codes(baseline)),
        (one, models[one], shared),
        images,
        path["baseline_vs_pair"],
    )
    plots.plot_side_by_side(
        (f"beta = {run_config(params, one)['beta']:g}", models[one], shared),
        (f"beta = {run_config(params, five)['beta']:g}", models[five], codes(five)),
        images,
        path["beta_comparison"],
        kl_per_dim={one: evals[one]["kl_per_dim"], five: evals[five]["kl_per_dim"]},
    )
    return drawn


def render(params: dict) -> list[Path]:
    """Draw the comparison figures, write summary.md and README.md; returns what was written."""
    r = roles(params)
    evals = {
        run: read_eval(run)
        for run in dict.fromkeys([*r["cifar"], *r["shapes"], r["autoencoder"], *r["faces"]])
    }
    quality = store.read_json(SAMPLE_QUALITY, "the sample_quality stage")
    study = store.read_json(METRICS_BETA, "the beta_study stage")
    figures = figure_list(params, quality, study)
    # Before any drawing: every figure the other stages should have drawn is there.
    missing = [
        (path, producer(params, path))
        for _, path, _ in figures
        if producer(params, path) != "render" and not (store.REPORTS / path).is_file()
    ]
    if missing:
        path, stage = missing[0]
        raise VaelabError(
            f"reports/{path} is "
            f"missing{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}; run its "
            f"stage first: dvc repro {stage}"
        )
    histories = {run: store.read_curves(store.curves_path(run)) for run in evals}
    for run, rows in histories.items():  # the eval files hold no timings; the curves do
        if rows and "epoch_seconds" in rows[0]:
            evals[run].setdefault("train_seconds", sum(row["epoch_seconds"] for row in rows))
    cifar = cifar_view(params, r["cifar"], evals, quality)
    drawn = draw_comparisons(params, r, evals, histories, resolve_device(params["device"]))
    summary = beta_summary(cifar, r["pair"], r["baseline"], study)
    store.atomic_write(SUMMARY, lambda tmp: Path(tmp).write_text(summary))
    readme = report_readme(
        r, cifar, quality, summary, figures, study, {run: evals[run] for run in r["faces"]}
    )
    store.atomic_write(README, lambda tmp: Path(tmp).write_text(readme))
    print(f"wrote {SUMMARY}, {README} and {len(drawn)} figures in {store.figures_dir('compare')}")
    return [*drawn, SUMMARY, README]
