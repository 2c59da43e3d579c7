"""Device choice and seeding."""

from __future__ import annotations

import random

import numpy as np
import torch

from .errors import VaelabError


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VaelabError(f"device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VaelabError(f"device {name!r} asked for, but CUDA is not available here; set device: auto or cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise VaelabError(f"device {name!r} asked for, but MPS is not available here; set device: auto or cpu")
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
