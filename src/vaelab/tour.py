"""The faces tour of evaluate@<run>: what a VAE's latent space looks like away from the codes of
real images (metrics.latent explains each measurement). Run for a VAE whose evaluate settings hold
shell radii: re-encoding consistency on shells around the origin and in neighbourhoods of real
faces, the prior vs a Gaussian mixture sampler, and, when the faces carry attributes, linear probes
and attribute directions; with their figures."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from . import plots
from .datasets import to_display
from .metrics.latent import (
    active_dimensions,
    attribute_direction,
    consistency,
    probe_attributes,
    reencode,
    reencoding_distance,
    shell_codes,
)
from .metrics.sample_quality import fit_latent_gmm, frechet_distance, sample_codes, sharpness
from .models import decode_batches, encode_batches

if TYPE_CHECKING:
    from .evaluate import Evaluation

EDITED_FACES = 200  # test faces whose codes are moved along each attribute direction


def tour_metrics(ev: Evaluation, test_codes: torch.Tensor, picks: torch.Tensor) -> dict:
    """The latent-space tour (metrics.latent explains each measurement) and its figures."""
    model, dataset, tour = ev.model, ev.dataset, ev.settings
    count, batch, latent = tour["sample_count"], ev.batch, model.latent_dim
    generator = torch.Generator().manual_seed(ev.seed)
    train_codes, _ = encode_batches(model, dataset["x_train"], ev.device, batch)
    active = active_dimensions(test_codes, tour["active_threshold"])
    # "Lands back" means as close as `consistency_quantile` of real test images' codes come back,
    # so real images score that quantile by construction.
    real_codes = test_codes[:count]
    real_reencoded = reencode(model, real_codes, batch)
    real_distances = reencoding_distance(real_codes, real_reencoded, active)
    threshold = float(torch.quantile(real_distances, tour["consistency_quantile"]))

    def judge(codes: torch.Tensor, reencoded: torch.Tensor | None = None) -> dict[str, float]:
        """Re-encoding consistency and distance, and a graded realism number: the Frechet distance
        between the encoder's view of the decoded codes and its view of real test images."""
        if reencoded is None:
            reencoded = reencode(model, codes, batch)
        distances = reencoding_distance(codes, reencoded, active)
        return {
            "reencoding_consistency": consistency(distances, threshold),
            "reencoding_distance": float(distances.mean()),
            "fd_codes": frechet_distance(test_codes[:, active], reencoded[:, active]),
        }

    shells, shell_examples = {}, {}
    for radius in tour["shell_radii"]:  # in units of sqrt(d), where N(0, I) puts its samples
        codes = shell_codes(count, latent, radius * math.sqrt(latent), generator)
        shells[f"{radius:g}"], shell_examples[f"{radius:g}"] = judge(codes), codes[:10]
    gmm = fit_latent_gmm(train_codes, tour["gmm_components"], ev.seed)
    sampler_codes = {
        "prior": sample_codes("prior", count, latent, ev.seed),
        "gmm": sample_codes("gmm", count, latent, ev.seed, gmm),
    }
    real_sharpness = sharpness(to_display(dataset["x_test"][:count]))
    samplers = {}
    for sampler, codes in {**sampler_codes, "real_test": real_codes}.items():
        decoded = decode_batches(model, codes, ev.device, batch)
        samplers[sampler] = {
            **judge(codes, real_reencoded if sampler == "real_test" else None),
            "sharpness": sharpness(decoded) / real_sharpness,
        }
    probe, directions, edits = attribute_metrics(ev, train_codes, test_codes)

    metrics = {
        "attribute_probe": {name: row["accuracy"] for name, row in probe.items()},
        "attribute_probe_baseline": {name: row["baseline"] for name, row in probe.items()},
        "shells": {r: row["reencoding_consistency"] for r, row in shells.items()},
        "shell_reencoding_distance": {r: row["reencoding_distance"] for r, row in shells.items()},
        "shell_fd_codes": {r: row["fd_codes"] for r, row in shells.items()},
        "reencoding_dimensions": int(active.sum()),
        "consistency_quantile": tour["consistency_quantile"],
        "consistency_threshold": threshold,
        "samplers": samplers,
        "gmm_components": tour["gmm_components"],
        "neighbourhoods": neighbourhood_metrics(
            model, real_codes, tour["neighbourhood_distances"], batch, generator
        ),
        "attribute_edit": edits,
        "edited_faces": min(len(test_codes), EDITED_FACES),
        "image_size": int(dataset["x_test"].shape[1]),
        "train_images": len(dataset["x_train"]),
        "tour_samples": count,
        "data_source": dataset.get("source") or dataset["name"],
        "interpolation_steps": tour["interpolation_steps"],
    }
    for r, row in shells.items():
        print(f"{ev.name}: shell r = {r}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()))

    rows = {
        f"r = {r}\n{100 * metrics['shells'][r]:.0f}% consistent": codes
        for r, codes in shell_examples.items()
    }
    title = f"codes at radius r x sqrt({latent}) in random directions"
    plots.plot_shells(model, rows, ev.figure("shells.png"), title)
    faces, face_codes = dataset["x_test"][picks], test_codes[picks]
    distances = tour["neighbourhood_distances"]
    path = ev.figure("neighbourhoods.png")
    plots.plot_neighbourhoods(model, faces[:4], face_codes[:4], distances, 3, generator, path)
    if directions:
        path = ev.figure("attributes.png")
        plots.plot_attribute_edits(
            model, faces[:3], face_codes[:3], directions, tour["strengths"], path
        )
    shown = {
        "prior N(0, I)": sampler_codes["prior"][:36],
        "Gaussian mixture on training codes": sampler_codes["gmm"][:36],
    }
    plots.plot_samplers(model, shown, ev.figure("samplers.png"))
    return metrics


def neighbourhood_metrics(
    model, centres: torch.Tensor, distances: list[float], batch: int, generator: torch.Generator
) -> dict:
    """How far the images move at each distance (x sqrt(d)) from real images' codes, against the
    distance between the reconstructions of two different images."""
    latent = centres.shape[1]
    reconstructions = decode_batches(model, centres, batch_size=batch)

    def rmse(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).pow(2).mean(dim=(1, 2, 3)).sqrt().mean())

    pixel_rmse = {}
    for d in distances:
        moved = centres + shell_codes(len(centres), latent, d * math.sqrt(latent), generator)
        pixel_rmse[f"{d:g}"] = rmse(decode_batches(model, moved, batch_size=batch), reconstructions)
    return {
        "pixel_rmse": pixel_rmse,
        "between_faces_rmse": rmse(reconstructions, reconstructions.roll(1, 0)),
    }


def attribute_metrics(
    ev: Evaluation, train_codes: torch.Tensor, test_codes: torch.Tensor
) -> tuple[dict, dict, dict]:
    """The linear probe of every attribute, the tour's attribute directions, and per direction and
    strength the probe's mean probability of the attribute on the re-encoded edited images. All
    empty when the images carry no attributes."""
    dataset = ev.dataset
    if "attributes_train" not in dataset:
        return {}, {}, {}
    names = dataset["attribute_names"]
    probe, probes = probe_attributes(
        train_codes, dataset["attributes_train"], test_codes, dataset["attributes_test"], names
    )
    directions, edits = {}, {}
    edited = test_codes[:EDITED_FACES]
    for name in ev.settings["attributes"]:
        if name not in probes:
            print(
                f"note: no attribute direction for {name}: the images have no (or one-sided) "
                "labels for it"
            )
            continue
        labels = dataset["attributes_train"][:, names.index(name)]
        directions[name] = attribute_direction(train_codes, labels)
        edits[name] = {}
        for strength in ev.settings["strengths"]:
            reencoded = reencode(ev.model, edited + strength * directions[name], ev.batch)
            probability = probes[name].predict_proba(reencoded.double().numpy())[:, 1]
            edits[name][f"{strength:+g}"] = float(probability.mean())
    return probe, directions, edits
