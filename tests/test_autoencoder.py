import torch

from vaelab.autoencoder import autoencoder_metrics, fit_autoencoder
from vaelab.checkpoints import TRAINING_STATE, load_training_state
from vaelab.data import to_model_input
from test_train import CPU, SECTION, fresh_model, tiny_data  # the same tiny model and data as the VAE loop's tests


def test_training_lowers_the_reconstruction_loss_and_repeats_exactly(tmp_path):
    x_train, x_test = tiny_data()
    runs = []
    for name in "ab":
        torch.manual_seed(5)
        runs.append(fit_autoencoder(fresh_model(), SECTION, x_train, x_test, CPU, tmp_path / name / TRAINING_STATE,
                                    seed=1))
    assert runs[0][-1]["train_recon"] < runs[0][0]["train_recon"]
    strip = lambda rows: [{k: v for k, v in r.items() if "second" not in k} for r in rows]  # noqa: E731
    assert strip(runs[0]) == strip(runs[1])
    assert set(runs[0][0]) >= {"train_recon", "test_recon", "test_mse"} and "test_kl" not in runs[0][0]


def test_the_code_is_deterministic_and_the_log_variance_is_never_trained(tmp_path):
    x_train, x_test = tiny_data()
    model = fresh_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fit_autoencoder(model, SECTION, x_train, x_test, CPU, tmp_path / TRAINING_STATE, seed=0)
    model.eval()
    x = to_model_input(x_test, CPU, torch.Generator().manual_seed(0))
    assert torch.equal(model.encode(x)[0], model.encode(x)[0])
    # The encoder's last linear layer outputs (mu, logvar); only the mu half may have moved.
    weight = "encoder.{}.weight".format(len(model.encoder) - 1)
    latent = SECTION["model"]["latent_dim"]
    assert not torch.equal(model.state_dict()[weight][:latent], before[weight][:latent])
    assert torch.equal(model.state_dict()[weight][latent:], before[weight][latent:])


def test_a_resumed_run_ends_with_the_same_weights(tmp_path):
    x_train, x_test = tiny_data()
    straight = fresh_model()
    torch.manual_seed(3)
    fit_autoencoder(straight, SECTION, x_train, x_test, CPU, tmp_path / "a" / TRAINING_STATE, seed=2)
    interrupted = fresh_model()
    torch.manual_seed(3)
    fit_autoencoder(interrupted, SECTION, x_train, x_test, CPU, tmp_path / "b" / TRAINING_STATE, seed=2,
                    stop_after_epoch=1)
    torch.manual_seed(999)
    state = load_training_state(tmp_path / "b" / TRAINING_STATE)
    resumed = fresh_model()
    history = fit_autoencoder(resumed, SECTION, x_train, x_test, CPU, tmp_path / "b" / TRAINING_STATE, seed=2,
                              state=state)
    assert [r["epoch"] for r in history] == [1, 2, 3]
    for key, value in straight.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_metrics_are_the_error_of_the_deterministic_reconstruction():
    _, x_test = tiny_data()
    model = fresh_model().eval()
    metrics = autoencoder_metrics(model, x_test, CPU, batch_size=5)
    x = to_model_input(x_test, CPU, torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = (model.decode(model.encode(x)[0]) - x).pow(2).mean().item()
    assert abs(metrics["mse"] - expected) < 1e-6
