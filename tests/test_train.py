import json

import pytest
import torch

from vaelab.checkpoints import TRAINING_STATE, load_model, load_training_state, save_model
from vaelab.errors import VaelabError
from vaelab.models import build_model
from vaelab.train import fit

SECTION = {"model": {"arch": "conv", "latent_dim": 4, "widths": [4, 8]}, "beta": 1.0, "epochs": 3,
           "batch_size": 16, "lr": 0.003}
CPU = torch.device("cpu")


def tiny_data(seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, 256, (40, 32, 32, 3), generator=g, dtype=torch.uint8),
            torch.randint(0, 256, (12, 32, 32, 3), generator=g, dtype=torch.uint8))


def fresh_model():
    torch.manual_seed(0)
    return build_model(SECTION["model"])


def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(tmp_path):
    x_train, x_test = tiny_data()
    straight = fresh_model()
    torch.manual_seed(123)
    history = fit(straight, SECTION, x_train, x_test, CPU, tmp_path / "a" / TRAINING_STATE, seed=7)

    interrupted = fresh_model()
    torch.manual_seed(123)
    fit(interrupted, SECTION, x_train, x_test, CPU, tmp_path / "b" / TRAINING_STATE, seed=7, stop_after_epoch=1)
    torch.manual_seed(999)  # whatever happens between the two processes must not matter
    state = load_training_state(tmp_path / "b" / TRAINING_STATE)
    assert state["epoch"] == 1
    resumed = fresh_model()
    resumed_history = fit(resumed, SECTION, x_train, x_test, CPU, tmp_path / "b" / TRAINING_STATE, seed=7, state=state)

    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    strip = lambda rows: [{k: v for k, v in r.items() if "second" not in k} for r in rows]  # noqa: E731
    assert strip(history) == strip(resumed_history)
    assert [r["epoch"] for r in resumed_history] == [1, 2, 3]


def test_same_seed_same_metrics_and_training_lowers_the_loss(tmp_path):
    x_train, x_test = tiny_data()
    runs = []
    for name in "ab":
        torch.manual_seed(5)
        runs.append(fit(fresh_model(), SECTION, x_train, x_test, CPU, tmp_path / name / TRAINING_STATE, seed=1))
    assert runs[0][-1]["test_neg_elbo"] == runs[1][-1]["test_neg_elbo"]
    assert runs[0][-1]["train_loss"] < runs[0][0]["train_loss"]


def test_nan_loss_stops_clearly_and_keeps_the_last_good_checkpoint(tmp_path):
    x_train, x_test = tiny_data()
    path = tmp_path / TRAINING_STATE

    def poison(epoch, row, model):  # after epoch 1 is checkpointed, break the weights
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))

    with pytest.raises(VaelabError, match=r"loss became nan at epoch 2, batch 0; the checkpoint of epoch 1 is kept"):
        fit(fresh_model(), SECTION, x_train, x_test, CPU, path, seed=0, on_epoch=poison)
    state = load_training_state(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_model_round_trip_is_state_dict_and_json(tmp_path):
    model = fresh_model().eval()
    save_model(tmp_path / "m", model, {"model": SECTION["model"], "beta": 1.0})
    assert json.loads((tmp_path / "m" / "config.json").read_text())["model"] == SECTION["model"]
    loaded, config = load_model(tmp_path / "m")
    z = torch.randn(3, 4)
    assert torch.equal(loaded.decode(z), model.decode(z))
    with pytest.raises(VaelabError, match="holds no trained model"):
        load_model(tmp_path / "nothing")


def test_unreadable_checkpoint_says_how_to_recover(tmp_path):
    (tmp_path / TRAINING_STATE).write_bytes(b"\x80\x04not a checkpoint")
    with pytest.raises(VaelabError, match="delete it to train from scratch"):
        load_training_state(tmp_path / TRAINING_STATE)
