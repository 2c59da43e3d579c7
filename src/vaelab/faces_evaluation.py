"""The `evaluate_faces` stage: test metrics and the latent-space tour of conv_faces.

Writes reports/faces/metrics.json (copied into reports/metrics.json as metrics["conv_faces"] by
the `evaluate` stage), reports/figures/faces_*.png, and reports/faces/report.md (appended to
reports/README.md by the `render` stage, so its figure links are relative to reports/). Every
sentence that compares numbers is chosen from the numbers at run time. The numbers and figures
also go into the conv_faces MLflow run.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import torch

from . import figures, latent_tour
from .checkpoints import load_model, write_json
from .data import to_display
from .faces import load_faces
from .faces_training import FACES_MODEL
from .metrics import active_units, elbo_metrics, posterior_stats, sharpness
from .params import faces_section
from .runtime import resolve_device
from .sample_quality import fit_latent_gmm, frechet_distance, sample_codes

FACES_REPORTS = Path("reports/faces")
FIGURES = Path("reports/figures")
CELEBA_TERMS = ("CelebA (Liu et al., \"Deep Learning Face Attributes in the Wild\", ICCV 2015) is licensed for "
                "non-commercial research purposes only; these faces, the trained model and its samples must not be "
                "used commercially.")
FIGURE_CAPTIONS = {
    "faces_curves.png": "conv_faces training curves (train solid, test dashed).",
    "faces_samples.png": "16 samples decoded from z ~ N(0, I).",
    "faces_reconstructions.png": "Held-out test faces and their reconstructions.",
    "faces_interpolations.png": "Straight lines between the codes of two real test faces, decoded in {steps} steps "
                                "(the real faces at the ends).",
    "faces_shells.png": "Codes at radius r x sqrt(d) in random directions, one row per r, with the re-encoding "
                        "consistency of that shell.",
    "faces_neighbourhoods.png": "Around the codes of real test faces: random codes at increasing distance.",
    "faces_attributes.png": "Attribute directions (mean code with minus without) added to the codes of test faces.",
    "faces_samplers.png": "The prior N(0, I) vs a Gaussian mixture fitted to the training codes.",
}


def _percent(value: float) -> str:
    return f"{100 * value:.0f}%"


def _shell_sentence(consistency: dict[str, float], fd_codes: dict[str, float]) -> str:
    """Where along the radius the decoded codes look most like real faces, by both numbers."""
    best_fd = min(fd_codes, key=lambda r: fd_codes[r])
    fd_part = (f"fd_codes is lowest (closest to real faces) at r = {best_fd} ({fd_codes[best_fd]:.2f}) and "
               f"{'rises' if fd_codes[max(fd_codes, key=float)] > fd_codes[best_fd] else 'stays'} to "
               f"{fd_codes[max(fd_codes, key=float)]:.2f} at r = {max(fd_codes, key=float)}.")
    if max(consistency.values()) == min(consistency.values()):
        return f"Consistency is {_percent(next(iter(consistency.values())))} at every radius; " + fd_part
    best = max(consistency, key=lambda r: consistency[r])
    farthest = max(consistency, key=float)
    return (f"Consistency is highest at r = {best} ({_percent(consistency[best])}) and is "
            f"{_percent(consistency[farthest])} at r = {farthest}; " + fd_part)


def report_section(metrics: dict) -> str:
    """The faces section of reports/README.md, from the measured numbers only."""
    m = metrics
    shells, distances = m["shells"], m["shell_reencoding_distance"]
    samplers = m["samplers"]
    prior, gmm = samplers["prior"]["reencoding_consistency"], samplers["gmm"]["reencoding_consistency"]
    lines = [
        "## Faces (CelebA): a tour of the latent space", "",
        f"*{CELEBA_TERMS}*", "",
        f"The same convolutional VAE, one stride-2 block deeper, trained as `{FACES_MODEL}` for {m['epochs']} epochs "
        f"({m['train_seconds'] / 60:.1f} min) on {m['train_images']:,} aligned CelebA faces ({m['data_source']}), "
        f"centre-cropped and resized to {m['image_size']}x{m['image_size']}; the last {m['test_images']:,} faces "
        f"are held out. MLflow experiment `celeba-vae`, run `{FACES_MODEL}`.", "",
        "| -ELBO (nats/img) | bits/dim | recon MSE | KL (nats/img) | active units | sample sharpness |",
        "|---|---|---|---|---|---|",
        f"| {m['test_neg_elbo']:.1f} | {m['test_bpd']:.3f} | {m['test_recon_mse']:.5f} | {m['test_kl']:.1f} | "
        f"{m['active_units']} of {m['latent_dim']} | {m['sample_sharpness']:.2f} |", "",
        "### Shells: realism near and far from the origin", "",
        f"Codes at radius r x sqrt(d) (d = {m['latent_dim']}; N(0, I) puts its samples near r = 1), "
        f"{m['tour_samples']:,} per shell in random directions. Each is decoded and the image encoded again; "
        "*consistency* is the share whose posterior mean lands back as close to the code (RMS over the "
        f"{m['reencoding_dimensions']} active dimensions"
        + ("; the decoder ignores the others" if m["reencoding_dimensions"] < m["latent_dim"] else "") + ") as "
        f"{_percent(m['consistency_quantile'])} of real test faces' codes do (within {m['consistency_threshold']:.3f}), "
        f"so real faces score {_percent(m['consistency_quantile'])}. *fd_codes* is a graded realism number: the "
        "Frechet distance between the encoder's posterior means of the decoded images and of the real test faces "
        f"(the model judging itself, with the formula of FID but not FID; its own reconstructions of real faces score "
        f"{m['samplers']['real_test']['fd_codes']:.2f}, lower is closer to real).", "",
        "| r | " + " | ".join(shells) + " |", "|---|" + "---|" * len(shells),
        "| consistency | " + " | ".join(_percent(v) for v in shells.values()) + " |",
        "| mean re-encoding distance | " + " | ".join(f"{v:.3f}" for v in distances.values()) + " |",
        "| fd_codes | " + " | ".join(f"{v:.2f}" for v in m["shell_fd_codes"].values()) + " |", "",
        _shell_sentence(shells, m["shell_fd_codes"]) + " r = 0 is a single code (the origin), so its consistency is "
        "all or nothing.", "",
        "### Neighbourhoods", "",
        "Random codes at a distance of t x sqrt(d) from the codes of real test faces; the pixel RMSE of their images "
        "from the face's reconstruction (0..1 scale), against the RMSE between reconstructions of two different "
        f"test faces ({m['neighbourhoods']['between_faces_rmse']:.3f}):", "",
        "| t | " + " | ".join(m["neighbourhoods"]["pixel_rmse"]) + " |",
        "|---|" + "---|" * len(m["neighbourhoods"]["pixel_rmse"]),
        "| pixel RMSE | " + " | ".join(f"{v:.3f}" for v in m["neighbourhoods"]["pixel_rmse"].values()) + " |", "",
    ]
    edits = m["attribute_edit"]
    if edits:
        strengths = list(next(iter(edits.values())))
        lines += ["### Attribute directions", "",
                  "Direction = mean training code with the attribute minus mean code without, added at strength s to "
                  f"the codes of {m['edited_faces']} test faces. The number is the linear probe's mean probability of "
                  "the attribute on the re-encoded edited image (does the edit survive decoding?):", "",
                  "| attribute | " + " | ".join(f"s = {s}" for s in strengths) + " |",
                  "|---|" + "---|" * len(strengths)]
        lines += [f"| {name} | " + " | ".join(f"{p:.2f}" for p in row.values()) + " |" for name, row in edits.items()]
        lines.append("")
    probe = m["attribute_probe"]
    if probe:
        baseline = m["attribute_probe_baseline"]
        order = sorted(probe, key=lambda name: baseline[name] - probe[name])
        lines += ["### What the code holds: a linear probe per attribute", "",
                  f"Logistic regression on the standardised posterior means of the {m['train_images']:,} training faces, "
                  f"accuracy on the {m['test_images']:,} held-out faces, beside always answering the training "
                  "majority class. Sorted by the gain over that baseline.", "",
                  "| attribute | probe accuracy | majority baseline | gain |", "|---|---|---|---|"]
        lines += [f"| {name} | {probe[name]:.3f} | {baseline[name]:.3f} | {probe[name] - baseline[name]:+.3f} |"
                  for name in order]
        lines.append("")
    else:
        lines += ["The faces came without attributes, so there are no attribute directions or probes.", ""]
    verb = "raises" if gmm > prior else "does not raise"
    lines += ["### Prior holes: the prior vs a mixture fitted to the training codes", "",
              f"A {m['gmm_components']}-component Gaussian mixture fitted to the training set's posterior means "
              f"{verb} re-encoding consistency ({_percent(prior)} from N(0, I), {_percent(gmm)} from the mixture; "
              f"real faces {_percent(samplers['real_test']['reencoding_consistency'])}) and takes fd_codes from "
              f"{samplers['prior']['fd_codes']:.2f} to {samplers['gmm']['fd_codes']:.2f}. Sharpness is the mean absolute "
              "Laplacian of the decoded images over that of real test faces.", "",
              "| codes | consistency | mean re-encoding distance | fd_codes | sharpness vs real |",
              "|---|---|---|---|---|"]
    lines += [f"| {name.replace('_', ' ')} | {_percent(row['reencoding_consistency'])} | {row['reencoding_distance']:.3f} | "
              f"{row['fd_codes']:.2f} | {row['sharpness']:.2f} |" for name, row in samplers.items()]
    lines += ["", "### Figures", ""]
    for file, caption in FIGURE_CAPTIONS.items():
        lines += [f"**{file}**: {caption.format(steps=m['interpolation_steps'])}", "", f"![{file}](figures/{file})", ""]
    return "\n".join(lines)


def _interpolation_labels(dataset: dict) -> tuple[torch.Tensor, list[str]]:
    """Pairs for the interpolation figure differ in Smiling when the faces have that attribute."""
    if "Smiling" in dataset["attribute_names"]:
        column = dataset["attribute_names"].index("Smiling")
        return (dataset["attr_test"][:, column] > 0).long(), ["not smiling", "smiling"]
    return torch.zeros(len(dataset["x_test"]), dtype=torch.long), ["face"]


class _Judge:
    """Decode codes, re-encode the images, and compare with real test faces (see latent_tour)."""

    def __init__(self, model, test_codes: torch.Tensor, active: torch.Tensor, quantile: float, count: int,
                 batch: int):
        self.model, self.test_codes, self.active, self.batch = model, test_codes, active, batch
        self.real_codes = test_codes[:count]
        self.real_reencoded = latent_tour.reencode(model, self.real_codes, batch)
        real = latent_tour.reencoding_distance(self.real_codes, self.real_reencoded, active)
        self.threshold = float(torch.quantile(real, quantile))  # "lands back" = as close as real faces do

    def __call__(self, codes: torch.Tensor, reencoded: torch.Tensor | None = None) -> dict[str, float]:
        """Re-encoding consistency and distance, and a graded realism number: the Frechet distance
        between the encoder's view of the decoded codes and its view of real test faces."""
        reencoded = latent_tour.reencode(self.model, codes, self.batch) if reencoded is None else reencoded
        distances = latent_tour.reencoding_distance(codes, reencoded, self.active)
        return {"reencoding_consistency": latent_tour.consistency(distances, self.threshold),
                "reencoding_distance": float(distances.mean()),
                "fd_codes": frechet_distance(self.test_codes[:, self.active], reencoded[:, self.active])}


def shell_metrics(judge: _Judge, radii: list[float], count: int, generator: torch.Generator):
    """Per radius (in units of sqrt(d)): the judge's numbers, and 10 codes to draw."""
    latent = judge.test_codes.shape[1]
    rows, examples = {}, {}
    for radius in radii:
        codes = latent_tour.shell_codes(count, latent, radius * math.sqrt(latent), generator)
        rows[f"{radius:g}"], examples[f"{radius:g}"] = judge(codes), codes[:10]
        print(f"shell r = {radius:g}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[f"{radius:g}"].items()))
    return rows, examples


def neighbourhood_metrics(model, centres: torch.Tensor, distances: list[float], batch: int,
                          generator: torch.Generator) -> dict:
    """How far the images move at each distance from real faces' codes, against the distance
    between the reconstructions of two different faces."""
    latent = centres.shape[1]
    reconstructions = latent_tour.decode_in_batches(model, centres, batch)

    def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).pow(2).mean(dim=(1, 2, 3)).sqrt().mean())

    moved = {f"{d:g}": centres + latent_tour.shell_codes(len(centres), latent, d * math.sqrt(latent), generator)
             for d in distances}
    return {"pixel_rmse": {key: rmse(latent_tour.decode_in_batches(model, codes, batch), reconstructions)
                           for key, codes in moved.items()},
            "between_faces_rmse": rmse(reconstructions, reconstructions.roll(1, 0))}


def attribute_metrics(model, dataset: dict, train_codes: torch.Tensor, test_codes: torch.Tensor, tour: dict,
                      batch: int) -> tuple[dict, dict, dict]:
    """The linear probe of every attribute, the tour's attribute directions, and per direction and
    strength the probe's mean probability of the attribute on the re-encoded edited faces."""
    names = dataset["attribute_names"]
    probe, probes = latent_tour.probe_attributes(train_codes, dataset["attr_train"], test_codes,
                                                 dataset["attr_test"], names)
    directions, edits = {}, {}
    edited = test_codes[:200]
    for name in tour["attributes"]:
        if name not in probes:
            print(f"note: no attribute direction for {name}: the faces have no (or one-sided) labels for it")
            continue
        directions[name] = latent_tour.attribute_direction(train_codes, dataset["attr_train"][:, names.index(name)])
        edits[name] = {f"{s:+g}": float(probes[name].predict_proba(
            latent_tour.reencode(model, edited + s * directions[name], batch).double().numpy())[:, 1].mean())
            for s in tour["strengths"]}
    return probe, directions, edits


def draw_figures(model, dataset: dict, test_codes: torch.Tensor, shell_examples: dict, metrics: dict,
                 directions: dict, sampler_codes: dict, tour: dict, generator: torch.Generator) -> None:
    FIGURES.mkdir(parents=True, exist_ok=True)
    curves = pd.read_csv(Path("reports/curves") / f"{FACES_MODEL}.csv").to_dict("records")
    figures.plot_curves({FACES_MODEL: curves}, FIGURES / "faces_curves.png")
    figures.save_samples(model, sampler_codes["prior"][:16], FIGURES / "faces_samples.png")
    picks = torch.randperm(len(dataset["x_test"]), generator=generator)[:8]
    figures.plot_reconstructions({FACES_MODEL: model}, dataset["x_test"][picks], FIGURES / "faces_reconstructions.png")
    labels, classes = _interpolation_labels(dataset)
    figures.plot_image_interpolation(model, dataset["x_test"], labels, classes, generator,
                                     FIGURES / "faces_interpolations.png", steps=int(tour["interpolation_steps"]))
    rows = {f"r = {r}\n{_percent(metrics['shells'][r])} consistent": codes for r, codes in shell_examples.items()}
    latent_tour.plot_shells(model, rows, FIGURES / "faces_shells.png",
                            f"codes at radius r x sqrt({model.latent_dim}) in random directions")
    latent_tour.plot_neighbourhoods(model, dataset["x_test"][picks[:4]], test_codes[picks[:4]],
                                    list(tour["neighbourhood_distances"]), 3, generator,
                                    FIGURES / "faces_neighbourhoods.png")
    if directions:
        latent_tour.plot_attribute_edits(model, dataset["x_test"][picks[:3]], test_codes[picks[:3]], directions,
                                         list(tour["strengths"]), FIGURES / "faces_attributes.png")
    else:  # the figure is a stage output: say why it shows no edits rather than leave it missing
        figures.plot_samplers(model, {"no attributes in these faces: prior samples instead": sampler_codes["prior"][:6]},
                              FIGURES / "faces_attributes.png")
    figures.plot_samplers(model, {"prior N(0, I)": sampler_codes["prior"][:36],
                                  "Gaussian mixture on training codes": sampler_codes["gmm"][:36]},
                          FIGURES / "faces_samplers.png")


def run_faces_evaluation(params: dict) -> dict:
    import mlflow

    from . import tracking

    faces, tour, seed = faces_section(params), params["faces_tour"], params["seed"]
    threshold = params["evaluate"]["active_threshold"]
    device = resolve_device(params["device"])
    tracking.check_tracking_server()
    dataset = load_faces(Path(faces["path"]))
    model_dir = Path("models") / FACES_MODEL
    model, config = load_model(model_dir, device)
    batch, count, latent = int(tour["batch_size"]), int(tour["sample_count"]), model.latent_dim
    generator = torch.Generator().manual_seed(seed)

    x_test = dataset["x_test"].to(device)
    elbo = elbo_metrics(model, x_test, device, beta=1.0, batch_size=batch, seed=seed)
    test_codes, _ = posterior_stats(model, x_test, device, batch)
    train_codes, _ = posterior_stats(model, dataset["x_train"].to(device), device, batch)
    active = latent_tour.active_dimensions(test_codes, threshold)
    judge = _Judge(model, test_codes, active, tour["consistency_quantile"], count, batch)

    shells, shell_examples = shell_metrics(judge, tour["shell_radii"], count, generator)
    gmm = fit_latent_gmm(train_codes, int(tour["gmm_components"]), seed)
    sampler_codes = {"prior": sample_codes("prior", count, latent, seed),
                     "gmm": sample_codes("gmm", count, latent, seed, gmm)}
    real_sharpness = sharpness(to_display(dataset["x_test"][:count]))
    decoded = {name: latent_tour.decode_in_batches(model, codes, batch)
               for name, codes in {**sampler_codes, "real_test": judge.real_codes}.items()}
    samplers = {name: {**judge(codes, judge.real_reencoded if name == "real_test" else None),
                       "sharpness": sharpness(decoded[name]) / real_sharpness}
                for name, codes in {**sampler_codes, "real_test": judge.real_codes}.items()}
    probe, directions, edits = attribute_metrics(model, dataset, train_codes, test_codes, tour, batch)

    metrics = {
        "test_neg_elbo": elbo["neg_elbo"], "test_bpd": elbo["bpd"], "test_recon_nll": elbo["recon"],
        "test_recon_mse": elbo["mse"], "test_kl": elbo["kl"],
        "active_units": active_units(test_codes, threshold), "latent_dim": latent,
        "sample_sharpness": samplers["prior"]["sharpness"],
        "beta": config["beta"], "epochs": config["epochs_trained"], "train_seconds": config["train_seconds"],
        "attribute_probe": {name: row["accuracy"] for name, row in probe.items()},
        "attribute_probe_baseline": {name: row["baseline"] for name, row in probe.items()},
        "shells": {r: row["reencoding_consistency"] for r, row in shells.items()},
        "shell_reencoding_distance": {r: row["reencoding_distance"] for r, row in shells.items()},
        "shell_fd_codes": {r: row["fd_codes"] for r, row in shells.items()},
        "reencoding_dimensions": int(active.sum()), "consistency_quantile": tour["consistency_quantile"],
        "consistency_threshold": judge.threshold, "samplers": samplers, "gmm_components": int(tour["gmm_components"]),
        "neighbourhoods": neighbourhood_metrics(model, test_codes[:count], tour["neighbourhood_distances"], batch,
                                               generator),
        "attribute_edit": edits, "edited_faces": min(len(test_codes), 200),
        "image_size": faces["image_size"], "train_images": len(dataset["x_train"]),
        "test_images": len(dataset["x_test"]), "tour_samples": count, "data_source": dataset["source"],
        "interpolation_steps": int(tour["interpolation_steps"]),
    }
    draw_figures(model, dataset, test_codes, shell_examples, metrics, directions, sampler_codes, tour, generator)
    FACES_REPORTS.mkdir(parents=True, exist_ok=True)
    write_json(FACES_REPORTS / "metrics.json", metrics)
    (FACES_REPORTS / "report.md").write_text(report_section(metrics))
    print(f"{FACES_MODEL}: -ELBO {elbo['neg_elbo']:.1f} nats ({elbo['bpd']:.3f} bits/dim), active units "
          f"{metrics['active_units']}, consistency prior {samplers['prior']['reencoding_consistency']:.3f} "
          f"vs gmm {samplers['gmm']['reencoding_consistency']:.3f}")

    flat = {f"final/{k}": float(v) for k, v in metrics.items() if isinstance(v, (int, float))}
    flat.update({f"final/shells/r_{r}": v for r, v in metrics["shells"].items()})
    flat.update({f"final/probe/{name}": v for name, v in metrics["attribute_probe"].items()})
    flat.update({f"final/{name}/{k}": v for name, row in samplers.items() for k, v in row.items()})
    with tracking.reopen_run(model_dir, faces["experiment"], FACES_MODEL):
        mlflow.log_metrics(flat)
        for file in FIGURE_CAPTIONS:
            mlflow.log_artifact(str(FIGURES / file), artifact_path="figures")
        mlflow.log_artifact(str(FACES_REPORTS / "report.md"))
    return metrics
