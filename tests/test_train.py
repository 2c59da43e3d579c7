"""The one training loop, for every objective: resumable to identical weights, repeatable, guarded
against divergence, and its files written so that a failure loses nothing."""

import errno
import json
import math

import pytest
import torch

from vaelab import store, train
from vaelab.datasets import to_model_input
from vaelab.errors import VaelabError
from vaelab.losses import vae_loss
from vaelab.metrics.likelihood import elbo_metrics
from vaelab.models import build_model
from vaelab.runtime import autocast
from vaelab.train import DivergedError, degrade, fit, kl_weights

CPU = torch.device("cpu")
VAE_RUN = {
    "name": "tiny",
    "objective": "vae",
    "model": {"arch": "conv", "latent_dim": 4, "widths": [4, 8]},
    "beta": 1.0,
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.003,
    "warmup_fraction": 0.0,
    "grad_clip": 0.0,
    "seed": 7,
}
AE_RUN = {**VAE_RUN, "objective": "ae", "beta": 0.0}
CLASSIFIER_RUN = {
    "name": "judge",
    "objective": "classifier",
    "model": {"arch": "resnet", "width": 4},
    "epochs": 3,
    "batch_size": 16,
    "lr": 0.05,
    "seed": 7,
    "optimizer": "sgd",
    "warmup_fraction": 0.2,
    "grad_clip": 0.0,
    "weight_decay": 5e-4,
    "label_smoothing": 0.1,
    "augment": True,
    "mixed_precision": False,
}
WARMED_CLIPPED_RUN = {**VAE_RUN, "warmup_fraction": 0.3, "grad_clip": 50.0}
RUNS = {
    "vae": VAE_RUN,
    "ae": AE_RUN,
    "classifier": CLASSIFIER_RUN,
    "vae_clipped": WARMED_CLIPPED_RUN,
}
GRAD_CLIPPED = {**VAE_RUN, "grad_clip": 100.0, "epochs": 1}


def tiny_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "x_train": torch.randint(0, 256, (40, 32, 32, 3), generator=g, dtype=torch.uint8),
        "x_test": torch.randint(0, 256, (12, 32, 32, 3), generator=g, dtype=torch.uint8),
        "y_train": torch.arange(40) % 10,
        "y_test": torch.arange(12) % 10,
    }


def fresh_model(run):
    torch.manual_seed(0)
    return build_model({**run["model"], "image_size": 32, "channels": 3})


def without_timings(rows):
    return [{k: v for k, v in r.items() if "second" not in k} for r in rows]


@pytest.mark.parametrize("objective", list(RUNS))
def test_a_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path, objective):
    """Resuming replays the uninterrupted run exactly, so the same seed gives the same metrics."""
    run, data = RUNS[objective], tiny_data()
    straight = fresh_model(run)
    torch.manual_seed(5)
    history = fit(straight, run, data, CPU, tmp_path / "a" / store.TRAINING_STATE)
    assert history[-1]["train_loss"] < history[0]["train_loss"]  # training lowers the loss

    interrupted = fresh_model(run)
    torch.manual_seed(5)
    fit(interrupted, run, data, CPU, tmp_path / "b" / store.TRAINING_STATE, stop_after_epoch=1)
    torch.manual_seed(999)  # whatever happens between the two processes must not matter
    state = store.load_training_state(tmp_path / "b" / store.TRAINING_STATE)
    assert state["epoch"] == 1
    resumed = fresh_model(run)
    resumed_history = fit(
        resumed, run, data, CPU, tmp_path / "b" / store.TRAINING_STATE, state=state
    )

    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    assert without_timings(history) == without_timings(resumed_history)
    assert [r["epoch"] for r in resumed_history] == [1, 2, 3]


def test_a_fixed_decoder_scale_and_the_autoencoders_log_variance_half_are_never_trained(tmp_path):
    fixed = {
        **VAE_RUN,
        "model": {**VAE_RUN["model"], "likelihood": {"kind": "gaussian_fixed", "sigma": 0.2}},
    }
    model = fresh_model(fixed)
    assert "log_sigma" not in dict(model.named_parameters())
    history = fit(model, fixed, tiny_data(), CPU, tmp_path / "a" / store.TRAINING_STATE)
    assert model.decoder_sigma() == pytest.approx(0.2)
    assert history[-1]["decoder_sigma"] == pytest.approx(0.2)
    learned = fresh_model(VAE_RUN)
    fit(learned, VAE_RUN, tiny_data(), CPU, tmp_path / "b" / store.TRAINING_STATE)
    assert learned.decoder_sigma() != pytest.approx(0.1)

    autoencoder = fresh_model(AE_RUN)
    before = autoencoder.encoder[-1].weight.detach().clone()
    fit(autoencoder, AE_RUN, tiny_data(), CPU, tmp_path / "c" / store.TRAINING_STATE)
    half = before.shape[0] // 2  # rows [half:] produce logvar
    assert torch.equal(autoencoder.encoder[-1].weight[half:], before[half:])
    assert not torch.equal(autoencoder.encoder[-1].weight[:half], before[:half])


def test_gradient_clipping_bounds_every_step(tmp_path):
    moved = {}
    for clip in (0.0, 1e-3):
        run = {**CLASSIFIER_RUN, "grad_clip": clip, "augment": False, "epochs": 1}
        model = fresh_model(run)
        before = torch.cat([p.detach().flatten() for p in model.parameters()])
        history = fit(model, run, tiny_data(), CPU, tmp_path / str(clip) / store.TRAINING_STATE)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        moved[clip] = (after - before).norm().item()
    # The norm before clipping is logged; with SGD the clipped steps barely move the weights.
    assert history[-1]["train_grad_norm"] > 1e-3
    assert moved[1e-3] < 0.05 * moved[0.0]


@pytest.mark.parametrize(
    "poisoned, message",
    [
        ("weight", r"loss became nan at epoch 2; the checkpoint of epoch 1 is kept"),
        # the loss stays finite while a BatchNorm running variance overflows
        ("buffer", r"diverged at epoch 2 \(non-finite .*running_var"),
    ],
)
def test_divergence_stops_clearly_and_keeps_the_last_finite_checkpoint(tmp_path, poisoned, message):
    path = tmp_path / store.TRAINING_STATE

    def poison(epoch, row, model):  # after epoch 1 is checkpointed
        with torch.no_grad():
            if poisoned == "weight":
                next(model.parameters()).fill_(float("nan"))
            else:
                model.encoder[1].running_var.fill_(float("inf"))

    with pytest.raises(DivergedError, match=message):
        fit(fresh_model(VAE_RUN), VAE_RUN, tiny_data(), CPU, path, on_epoch=poison)
    state = store.load_training_state(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_a_diverging_learning_rate_exits_non_zero_without_a_model(tmp_path):
    run = {**VAE_RUN, "lr": 1e6, "epochs": 2}
    with pytest.raises(DivergedError, match="lower runs.tiny.lr"):
        fit(fresh_model(run), run, tiny_data(), CPU, tmp_path / store.TRAINING_STATE)


class Payload:
    def __reduce__(self):
        return (print, ("payload ran",))


def test_model_round_trip_is_state_dict_and_json_and_a_file_holding_code_is_refused(
    tmp_path, capsys
):
    model = fresh_model(VAE_RUN).eval()
    config = {"model": {**VAE_RUN["model"], "image_size": 32, "channels": 3}, "beta": 1.0}
    store.save_model(tmp_path / "m", model, config)
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"] == config["model"]
    loaded, _ = store.load_model(tmp_path / "m")
    z = torch.randn(3, 4)
    assert torch.equal(loaded.decode(z), model.decode(z))
    with pytest.raises(VaelabError, match="holds no trained model"):
        store.load_model(tmp_path / "nothing")
    torch.save({"weights": Payload()}, tmp_path / "m" / store.WEIGHTS)
    with pytest.raises(VaelabError) as failure:
        store.load_model(tmp_path / "m")
    message = str(failure.value)
    assert "\n" not in message and "model.pt" in message and "weights_only=False" not in message
    assert "payload ran" not in capsys.readouterr().out


def test_a_full_disk_keeps_the_old_checkpoint_and_an_unreadable_one_names_the_fix(
    tmp_path, monkeypatch
):
    path = tmp_path / store.TRAINING_STATE
    store.save_training_state(path, {"epoch": 1})

    def no_space(obj, f, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", no_space)
    with pytest.raises(VaelabError, match="disk full while writing .*checkpoint.pt; free space"):
        store.save_training_state(path, {"epoch": 2})
    monkeypatch.undo()
    assert store.load_training_state(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == [store.TRAINING_STATE]  # no temporary file left

    path.write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(VaelabError, match=f"unreadable; delete {tmp_path} to train from scratch"):
        store.load_training_state(path)


def test_a_vae_under_autocast_keeps_its_loss_in_fp32_and_learns(tmp_path):
    """The GPU path run as bf16 on the CPU: likelihood and KL summed in fp32, comparable numbers."""
    run = {**VAE_RUN, "mixed_precision": True, "epochs": 2}
    model, data = fresh_model(run), tiny_data()
    x = to_model_input(data["x_train"][:8], CPU)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        decoded, mu, logvar = model(x)
        parts = vae_loss(model.reconstruction_nll(x, decoded), mu, logvar, 1.0)
    assert decoded.dtype == torch.bfloat16  # the network itself ran in half precision
    assert all(value.dtype == torch.float32 for value in parts.values())
    history = fit(model, run, data, CPU, tmp_path / store.TRAINING_STATE)
    assert all(math.isfinite(row["test_neg_elbo"]) for row in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_the_test_metrics_under_autocast_are_fp32_numbers_close_to_an_fp32_evaluation():
    """bf16 evaluation (a GPU's half precision): bits/dim within 1% of the fp32 number."""
    model, data = fresh_model(VAE_RUN), tiny_data()
    exact = elbo_metrics(model, data["x_test"], CPU, seed=3)
    with autocast(CPU, True):
        half = elbo_metrics(model, data["x_test"], CPU, seed=3)
    assert half.keys() == exact.keys()
    assert all(math.isclose(half[k], exact[k], rel_tol=0.01) for k in ("bpd", "neg_elbo"))


def overflow_on(monkeypatch, steps, scaler: bool) -> list:
    """clip_grad_norm_ reports an overflow (inf) on the given steps (1-based; None: every step);
    with `scaler`, the fp16 path's GradScaler runs on the CPU (train.py enables it on CUDA only)."""
    real_clip, calls = torch.nn.utils.clip_grad_norm_, []

    def clip(parameters, max_norm):
        norm = real_clip(parameters, max_norm)
        calls.append(norm)
        return torch.tensor(float("inf")) if steps is None or len(calls) in steps else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", clip)
    if scaler:
        real = torch.amp.GradScaler
        monkeypatch.setattr(torch.amp, "GradScaler", lambda device, enabled: real("cpu"))
    return calls


def test_a_step_whose_gradient_overflowed_is_left_out_of_the_epochs_grad_norm(
    tmp_path, monkeypatch
):
    """The GradScaler skips that step; its inf norm must not make the epoch look diverged."""
    calls = overflow_on(monkeypatch, {1}, scaler=True)
    history = fit(fresh_model(GRAD_CLIPPED), GRAD_CLIPPED, tiny_data(), CPU, tmp_path / "c.pt")
    finite = [float(n) for n in calls[1:]]
    assert math.isclose(history[0]["train_grad_norm"], sum(finite) / len(finite), rel_tol=0.1)


@pytest.mark.parametrize(
    "steps, scaler, message",
    [
        (None, True, "the GradScaler skipped every step of epoch 1"),
        # fp32 (every CPU run): no scaler would skip the step, so the weights would be ruined
        ({2}, False, "the gradient norm became inf at epoch 1; no checkpoint"),
    ],
)
def test_overflowing_gradients_stop_the_run(tmp_path, monkeypatch, steps, scaler, message):
    overflow_on(monkeypatch, steps, scaler)
    with pytest.raises(DivergedError, match=message):
        fit(fresh_model(GRAD_CLIPPED), GRAD_CLIPPED, tiny_data(), CPU, tmp_path / "c.pt")


def test_a_checkpoint_of_other_code_is_not_resumed(monkeypatch):
    key = train.checkpoint_dir(VAE_RUN, {"name": "d"}, "abc")
    monkeypatch.setattr(train, "CODE_DIGEST", "other code")
    assert train.checkpoint_dir(VAE_RUN, {"name": "d"}, "abc") != key


def test_degrade_blurs_downsamples_and_noises_half_the_batch_and_is_seeded():
    x = torch.rand(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    a = degrade(x, torch.Generator().manual_seed(1))
    b = degrade(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == x.shape and a.min() >= 0 and a.max() <= 1
    changed = (a - x).abs().flatten(1).amax(1) > 1e-6
    assert changed[:32].all() and not changed[32:].any()  # blur, down-up, noise; half stays sharp

    # blur and down-up remove high frequencies: neighbouring pixels differ less than in x
    def roughness(images):
        return (images[..., 1:] - images[..., :-1]).abs().mean()

    assert roughness(a[:24]) < 0.5 * roughness(x[:24])


def test_the_kl_weight_rises_linearly_over_its_warmup_and_fit_weighs_each_step_by_it(tmp_path):
    weight = kl_weights({"beta": 8.0, "epochs": 2, "kl_warmup_fraction": 0.5}, steps_per_epoch=4)
    assert [weight(step) for step in range(6)] == [2.0, 4.0, 6.0, 8.0, 8.0, 8.0]
    assert kl_weights({"beta": 8.0, "epochs": 2}, 4)(0) == 8.0  # no warm-up: beta from the start
    strong = {**VAE_RUN, "beta": 50.0, "epochs": 1}
    plain = fit(fresh_model(strong), strong, tiny_data(), CPU, tmp_path / "a.pt")[0]
    warmed = {**strong, "kl_warmup_fraction": 0.9}
    warm = fit(fresh_model(warmed), warmed, tiny_data(), CPU, tmp_path / "b.pt")[0]
    # The same first step (beta 50 / 3 against 50), then the weights part: the train objective
    # counts the smaller betas, the test objective the full one.
    assert warm["train_loss"] < plain["train_loss"]
    assert warm["train_kl"] > plain["train_kl"]
    assert warm["test_loss"] == pytest.approx(warm["test_recon"] + 50.0 * warm["test_kl"], rel=1e-4)
