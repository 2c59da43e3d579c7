"""A tour of a trained VAE's latent space: where codes decode to realistic images, and what
directions in it mean. Measurements first, then the figures that show them.

* Shells: codes at one radius, uniformly in direction. Under N(0, I) in d dimensions almost all the
  mass lies near radius sqrt(d), so radii are given in units of sqrt(d): r = 1 is where the prior
  puts its samples, r = 0 is the origin (the most likely single code, yet an atypical one).
* Re-encoding consistency: decode a code, encode the image, and see whether the posterior mean
  lands back near the code. A code the decoder maps to something the encoder recognises as a face
  comes back; a code off the data manifold does not. Distances are RMS over the *active*
  dimensions only, because the decoder ignores the others, so no encoder could recover them.
  "Near" is calibrated on real faces: within the distance that `quantile` of real test faces' codes
  come back within (so real faces score `quantile` by construction).
* Neighbourhoods: codes at a fixed distance from a real face's code, in random directions.
* Attribute directions (White, "Sampling Generative Networks", 2016): mean code of the faces with
  an attribute minus the mean code of those without, added to a face's code at several strengths.
* Linear probe: a logistic regression predicting each attribute from the codes, against the
  majority-class baseline; how much of each attribute the code holds linearly.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .data import to_display
from .figures import _save, _show, decode  # the study's grid drawing, shared with the CIFAR figures
from .models import VAE


def shell_codes(count: int, latent_dim: int, radius: float, generator: torch.Generator) -> torch.Tensor:
    """(count, latent_dim) codes uniformly distributed on the sphere of `radius` around the origin."""
    directions = torch.randn(count, latent_dim, generator=generator)
    return radius * directions / directions.norm(dim=1, keepdim=True)


def active_dimensions(posterior_means: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean mask of the dimensions whose posterior mean varies across data (as `metrics.active_units`);
    all dimensions when none is active (an untrained model), so distances stay defined."""
    active = posterior_means.var(dim=0) > threshold
    return active if active.any() else torch.ones_like(active)


def decode_in_batches(model: VAE, codes: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """(N, latent) codes -> (N, C, H, W) decoder means in [0, 1] on the CPU, a batch at a time."""
    return torch.cat([decode(model, codes[i:i + batch_size]) for i in range(0, len(codes), batch_size)])


@torch.no_grad()
def reencode(model: VAE, codes: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """codes -> the posterior means of their decoded images (decoder means, no sampling), on the CPU."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model.encode(model.decode(codes[i:i + batch_size].to(device)))[0].float().cpu()
                      for i in range(0, len(codes), batch_size)])


def reencoding_distance(codes: torch.Tensor, reencoded: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """(N,) RMS difference over the active dimensions between codes and their re-encodings."""
    return (reencoded - codes)[:, active].pow(2).mean(dim=1).sqrt()


def consistency(distances: torch.Tensor, threshold: float) -> float:
    """The fraction of codes that land back within `threshold` of themselves."""
    return float((distances <= threshold).float().mean())


def attribute_direction(codes: torch.Tensor, attribute: torch.Tensor) -> torch.Tensor:
    """Mean code of the rows with the attribute (+1) minus the mean code of those without (-1)."""
    present = attribute > 0
    if present.all() or not present.any():
        raise ValueError("the attribute needs examples with and without it")
    return codes[present].mean(dim=0) - codes[~present].mean(dim=0)


def apply_direction(code: torch.Tensor, direction: torch.Tensor, strengths: list[float]) -> torch.Tensor:
    """(S, latent): the code moved by each strength times the direction (strength 0 = the code)."""
    return code.unsqueeze(0) + torch.tensor(strengths, dtype=code.dtype).unsqueeze(1) * direction


def probe_attributes(train_codes: torch.Tensor, train_attributes: torch.Tensor, test_codes: torch.Tensor,
                     test_attributes: torch.Tensor, names: list[str]) -> tuple[dict, dict]:
    """Per attribute: a standardised logistic regression on the training codes, scored on the test
    codes, beside the majority class of the training labels scored the same way.

    Returns ({name: {"accuracy", "baseline"}}, {name: fitted probe}); an attribute with a single
    class in the training set has no probe and scores the baseline.
    """
    scores, probes = {}, {}
    x_train, x_test = train_codes.double().numpy(), test_codes.double().numpy()
    for j, name in enumerate(names):
        y_train, y_test = train_attributes[:, j].numpy() > 0, test_attributes[:, j].numpy() > 0
        baseline = DummyClassifier(strategy="most_frequent").fit(x_train, y_train).score(x_test, y_test)
        accuracy = baseline
        if len(np.unique(y_train)) == 2:
            probes[name] = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x_train, y_train)
            accuracy = probes[name].score(x_test, y_test)
        scores[name] = {"accuracy": float(accuracy), "baseline": float(baseline)}
    return scores, probes


# ---------------------------------------------------------------------------------------- figures


def plot_shells(model: VAE, codes_by_label: dict[str, torch.Tensor], path: Path, title: str) -> None:
    """One row of decoded codes per shell, labelled with its radius and measured number."""
    fig, axes = plt.subplots(len(codes_by_label), 1, figsize=(1.0 * len(next(iter(codes_by_label.values()))),
                                                                1.05 * len(codes_by_label) + 0.6))
    for ax, (label, codes) in zip(np.atleast_1d(axes), codes_by_label.items()):
        _show(ax, decode(model, codes), nrow=len(codes), ylabel=label)
    np.atleast_1d(axes)[0].set_title(title, fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_neighbourhoods(model: VAE, images: torch.Tensor, centres: torch.Tensor, distances: list[float],
                        per_distance: int, generator: torch.Generator, path: Path) -> None:
    """Per real face: the face, its reconstruction, then `per_distance` random codes at each distance
    (in units of sqrt(d)) from its code, groups separated by a blank."""
    scale = math.sqrt(centres.shape[1])
    fig, axes = plt.subplots(len(images), 1, figsize=(1.0 * (2 + len(distances) * (per_distance + 1)),
                                                      1.05 * len(images) + 0.7))
    originals = to_display(images)
    for ax, original, centre in zip(np.atleast_1d(axes), originals, centres):
        blank = torch.ones_like(original).unsqueeze(0)
        row = [original.unsqueeze(0), decode(model, centre.unsqueeze(0))]
        for distance in distances:
            row += [blank, decode(model, centre + shell_codes(per_distance, len(centre), distance * scale, generator))]
        _show(ax, torch.cat(row), nrow=sum(len(r) for r in row))
    groups = ", ".join(f"{d:g}" for d in distances)
    np.atleast_1d(axes)[0].set_title(f"real face | reconstruction | {per_distance} random codes at distance "
                                     f"{groups} x sqrt(d) from its code", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def plot_attribute_edits(model: VAE, images: torch.Tensor, codes: torch.Tensor, directions: dict[str, torch.Tensor],
                         strengths: list[float], path: Path) -> None:
    """Per attribute, per face: the real face, then its code plus each strength times the direction."""
    fig, axes = plt.subplots(len(directions), 1, figsize=(1.0 * (len(strengths) + 2),
                                                          (1.05 * len(images) + 0.45) * len(directions)))
    originals = to_display(images)
    for ax, (name, direction) in zip(np.atleast_1d(axes), directions.items()):
        rows = [torch.cat([originals[i:i + 1], torch.ones_like(originals[i:i + 1]),
                           decode(model, apply_direction(code, direction, strengths))])
                for i, code in enumerate(codes)]
        _show(ax, torch.cat(rows), nrow=len(strengths) + 2,
              title=f"{name}: real | code + s x direction, s = " + ", ".join(f"{s:+g}" for s in strengths))
    fig.tight_layout()
    _save(fig, path)
