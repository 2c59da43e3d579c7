"""Mixed precision is decided per machine: never on a CPU without native bf16."""

import torch

from vaelab import runtime


def test_auto_keeps_fp32_on_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not runtime.cpu_has_native_bf16()
    assert not runtime.use_mixed_precision("auto", torch.device("cpu"))
    assert runtime.use_mixed_precision(True, torch.device("cpu"))  # forced on by the user
    assert not runtime.use_mixed_precision(False, torch.device("cuda"))


def test_auto_uses_bf16_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert runtime.use_mixed_precision("auto", torch.device("cpu"))
    assert runtime.use_mixed_precision("auto", torch.device("cuda"))  # fp16 with a GradScaler


def test_cuda_means_half_precision_on_cuda_and_fp32_on_every_cpu(monkeypatch):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: True)
    assert not runtime.use_mixed_precision("cuda", torch.device("cpu"))
    assert runtime.use_mixed_precision("cuda", torch.device("cuda"))


def test_evaluation_uses_mixed_precision_on_an_accelerator_only():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert runtime.use_mixed_precision_in_evaluation("cuda", cuda)
    assert runtime.use_mixed_precision_in_evaluation(True, cuda)
    assert not runtime.use_mixed_precision_in_evaluation(False, cuda)
    assert not runtime.use_mixed_precision_in_evaluation(True, cpu)  # metrics stay fp32 on a CPU
