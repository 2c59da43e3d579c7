"""Device choice, seeding and mixed precision: decided per machine, never assumed."""

import contextlib
import random
from pathlib import Path

import numpy as np
import torch

from .errors import VaelabError


def resolve_device(name: str) -> torch.device:
    """`auto` picks cuda, then mps, then cpu; an explicit device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise VaelabError(
            f"device {name!r} is not a device name; use auto, cpu, cuda, cuda:N or mps"
        ) from None
    available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    if device.type in available and not available[device.type]():
        raise VaelabError(
            f"device {name!r} asked for, but {device.type.upper()} is not available here; "
            "set device: auto or cpu"
        )
    return device


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# CPUs with native bfloat16 arithmetic (AVX-512 BF16 or AMX). On AVX2-only CPUs bf16 autocast is
# emulated and measured ~10x slower than fp32 (torch reports their capability as "AVX2"), so
# `auto` keeps fp32 there.
def cpu_has_native_bf16() -> bool:
    if str(torch.backends.cpu.get_cpu_capability()) in ("AVX2", "DEFAULT", "NO AVX"):
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:  # not Linux: ask torch (a private probe, hence the fallback)
        return bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)())
    return "avx512_bf16" in flags or "amx_bf16" in flags


def use_mixed_precision(setting, device: torch.device) -> bool:
    """`auto`: on CUDA, and on a CPU with native bf16; `cuda`: on CUDA only (the CPU keeps fp32
    whatever it is, so a run's CPU numbers do not depend on the CPU model); `True`/`False` force it."""
    if setting == "cuda":
        return device.type == "cuda"
    if setting != "auto":
        return bool(setting)
    return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())


def use_mixed_precision_in_evaluation(setting, device: torch.device) -> bool:
    """The run's training setting, on an accelerator only: on a CPU the measurements stay fp32,
    since autocast would also turn the metrics' own CPU arithmetic (covariances, distances) into
    bf16, and evaluation is a small part of a CPU run's time."""
    return device.type != "cpu" and use_mixed_precision(setting, device)


def autocast(device: torch.device, enabled: bool):
    """bf16 on the CPU, fp16 on CUDA (paired with a GradScaler in train.py); a no-op when disabled."""
    if not enabled or device.type not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(
        device.type, dtype=torch.bfloat16 if device.type == "cpu" else torch.float16
    )
