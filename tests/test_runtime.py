"""Mixed precision is decided per machine: never on a CPU without native bf16."""

import pytest
import torch

from vaelab import runtime

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "setting, device, native_bf16, expected",
    [
        ("auto", CPU, False, False),  # fp32 on a CPU without native bf16
        (True, CPU, False, True),  # forced on by the user
        (False, CUDA, False, False),
        ("auto", CPU, True, True),
        ("auto", CUDA, True, True),  # fp16 with a GradScaler
        ("cuda", CPU, True, False),  # "cuda": half precision on CUDA, fp32 on every CPU
        ("cuda", CUDA, True, True),
    ],
)
def test_mixed_precision_follows_the_setting_and_the_machine(
    monkeypatch, setting, device, native_bf16, expected
):
    monkeypatch.setattr(runtime, "cpu_has_native_bf16", lambda: native_bf16)
    assert runtime.use_mixed_precision(setting, device) is expected


def test_an_avx2_cpu_has_no_native_bf16(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not runtime.cpu_has_native_bf16()


def test_evaluation_uses_mixed_precision_on_an_accelerator_only():
    assert runtime.use_mixed_precision_in_evaluation("cuda", CUDA)
    assert runtime.use_mixed_precision_in_evaluation(True, CUDA)
    assert not runtime.use_mixed_precision_in_evaluation(False, CUDA)
    assert not runtime.use_mixed_precision_in_evaluation(True, CPU)  # metrics stay fp32 on a CPU
