"""The whole DAG, end to end: `dvc repro` on a smoke override in a temporary copy of the project."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CELEBA_ATTRIBUTES, sha256, write_celeba_archive, write_png_archive

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ["curves.png", "samples_fc.png", "samples_conv.png", "samples_conv_beta5.png",
           "interpolation_prior_conv.png", "interpolation_images_conv.png", "reconstructions.png",
           "fc_vs_conv.png", "beta_comparison.png", "traversals_conv.png", "traversals_conv_beta5.png",
           "samples_labelled_conv.png", "samplers_conv.png"]
FACES_FIGURES = ["faces_curves.png", "faces_samples.png", "faces_reconstructions.png", "faces_interpolations.png",
                 "faces_shells.png", "faces_neighbourhoods.png", "faces_attributes.png", "faces_samplers.png"]
SMOKE_BETAS = [1, 5]
BETA_FIGURES = ["beta_tradeoff.png", "interpolation_smoothness.png", "autoencoder_vs_vae_shapes.png",
                "traversals_shapes_beta1.png", "traversals_shapes_beta5.png"]


def run(cmd, cwd, env):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory):
    project = tmp_path_factory.mktemp("project")
    for item in ("dvc.yaml", "params.yaml", "pipeline", "src"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, project / item)
    mirror = project.parent / "mirror"
    mirror.mkdir()
    write_png_archive(mirror / "cifar10-png.tar.gz", train_count=300, test_count=100)
    write_celeba_archive(mirror / "celeba-10k.tar.gz", count=36)

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"].update(mirror_dirs=[str(mirror)], png_sha256=sha256(mirror / "cifar10-png.tar.gz"),
                          allow_download=False)
    for name in ("fc", "conv", "conv_beta5"):
        params[name].update(epochs=1, batch_size=64)
    params["evaluator"].update(epochs=1, width=4, batch_size=64)
    params["evaluate"].update(sample_count=100, batch_size=50, gmm_components=2)
    params["faces"].update(mirror_dirs=[str(mirror)], archive_sha256=sha256(mirror / "celeba-10k.tar.gz"),
                           test_count=12)
    params["conv_faces"].update(epochs=1, batch_size=16)
    params["faces_tour"].update(sample_count=40, batch_size=20, gmm_components=2)
    # The beta study on a 216-image shapes grid, two betas, one epoch.
    params["shapes"]["data"].update(hue=2, scale=2, rotation=2, x=3, y=3, test_count=60)
    params["shapes"]["betas"] = SMOKE_BETAS
    params["shapes"]["train"].update(epochs=1, batch_size=32)
    params["shapes"]["evaluate"].update(code_count=100, dci_trees=5, prior_samples=16, paths=4, cifar_codes=50,
                                        gradient_images=4, gradient_samples=8)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
           "MLFLOW_TRACKING_URI": f"sqlite:///{project}/mlflow.db", "MLFLOW_DISABLE_TELEMETRY": "true",
           "DVC_NO_ANALYTICS": "1"}
    env.pop("VAELAB_DATA_DIR", None)
    env.pop("VAELAB_FACES_DIR", None)
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], project, env)
    run(dvc + ["init", "-q"], project, env)
    run(dvc + ["config", "core.analytics", "false"], project, env)
    output = run(dvc + ["repro"], project, env)
    return project, env, dvc, output


def test_repro_writes_metrics_for_every_model(smoke_project):
    project, *_ = smoke_project
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"fc", "conv", "conv_beta5", "reference", "evaluator_accuracy",
                            "evaluator_temperature", "evaluated_images", "conv_faces"}
    assert 0 <= metrics["evaluator_accuracy"] <= 1
    assert set(metrics["reference"]) == {"real_train", "noise", "blurred"}
    for name in ("fc", "conv", "conv_beta5"):
        values = metrics[name]
        for sampler in ("prior", "gmm"):
            row = values["samplers"][sampler]
            assert row["fd_clf"] >= 0 and 1 <= row["is_clf"] <= 10 and 0 <= row["recognisable"] <= 1
            assert abs(sum(row["class_histogram"].values()) - 1) < 1e-3
        assert values["fd_clf_recon"] >= 0
        for key in ("test_neg_elbo", "test_bpd", "test_recon_mse", "test_kl", "active_units", "epochs",
                    "train_seconds"):
            assert key in values, (name, key)
        assert values["epochs"] == 1
        assert 0 < values["test_recon_mse"] < 1
        assert values["test_kl"] > 0
        assert 0 <= values["active_units"] <= values["latent_dim"]
    assert metrics["conv_beta5"]["beta"] == 5.0


def test_repro_renders_figures_and_report(smoke_project):
    project, *_ = smoke_project
    for figure in FIGURES:
        path = project / "reports" / "figures" / figure
        assert path.is_file() and path.stat().st_size > 1000, figure
    summary = (project / "reports" / "summary.md").read_text()
    assert len(summary.split()) <= 300
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert f"{metrics['conv']['test_recon_mse']:.3g}" in summary  # the numbers are the measured ones
    report = (project / "reports" / "README.md").read_text()
    assert all(f"figures/{figure}" in report for figure in FIGURES)
    for name in ("fc", "conv", "conv_beta5", "evaluator"):
        rows = (project / "reports" / "curves" / f"{name}.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,") and len(rows) == 2


def test_every_model_has_one_mlflow_run_with_per_epoch_metrics(smoke_project):
    project, env, *_ = smoke_project
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("cifar10-vae")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(run.info.run_name for run in runs) == ["conv", "conv_beta5", "evaluator", "fc"]
    for run in runs:
        if run.info.run_name == "evaluator":
            assert len(client.get_metric_history(run.info.run_id, "test_accuracy")) == 1
            continue
        history = client.get_metric_history(run.info.run_id, "test_neg_elbo")
        assert [m.step for m in history] == [1]
        assert "final/test_bpd" in run.data.metrics  # added by the evaluate stage
        assert "final/gmm/fd_clf" in run.data.metrics
        assert run.data.params["beta"] in ("1.0", "5.0")
        assert run.data.tags["data_sha256"]
        figures = [a.path for a in client.list_artifacts(run.info.run_id, "figures")]
        assert f"figures/samples_{run.info.run_name}.png" in figures  # added by the render stage


def test_dvc_sees_everything_up_to_date_and_plots_render(smoke_project):
    project, env, dvc, _ = smoke_project
    assert "up to date" in run(dvc + ["status"], project, env)
    assert "Running stage" not in run(dvc + ["repro"], project, env)  # nothing reruns
    run(dvc + ["plots", "show", "-o", str(project / "plots_html")], project, env)
    assert (project / "plots_html" / "index.html").is_file()
    shown = run(dvc + ["metrics", "show", "--json"], project, env)
    assert "test_bpd" in shown


def test_faces_stages_measure_the_tour_into_metrics_report_and_mlflow(smoke_project):
    project, env, *_ = smoke_project
    import numpy as np

    with np.load(project / "data" / "faces.npz") as faces:
        assert faces["x_train"].shape == (24, 64, 64, 3) and faces["x_train"].dtype == np.uint8
        assert faces["attr_test"].shape == (12, 40) and set(np.unique(faces["attr_test"])) <= {-1, 1}
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    faces_metrics = metrics["conv_faces"]
    assert faces_metrics == json.loads((project / "reports" / "faces" / "metrics.json").read_text())
    for key in ("test_neg_elbo", "test_bpd", "test_recon_mse", "test_kl", "active_units", "epochs", "train_seconds"):
        assert key in faces_metrics, key
    assert faces_metrics["epochs"] == 1 and 0 < faces_metrics["test_recon_mse"] < 1
    assert set(faces_metrics["attribute_probe"]) == set(CELEBA_ATTRIBUTES)
    assert all(0 <= a <= 1 for a in faces_metrics["attribute_probe"].values())
    assert list(faces_metrics["shells"]) == ["0", "0.5", "1", "1.5", "2", "3"]
    assert all(0 <= v <= 1 for v in faces_metrics["shells"].values())
    assert set(faces_metrics["attribute_edit"]) == {"Smiling", "Eyeglasses", "Male", "Blond_Hair"}
    assert set(faces_metrics["samplers"]) == {"prior", "gmm", "real_test"}
    for figure in FACES_FIGURES:
        path = project / "reports" / "figures" / figure
        assert path.is_file() and path.stat().st_size > 1000, figure
    report = (project / "reports" / "README.md").read_text()
    assert "## Faces (CelebA): a tour of the latent space" in report and "non-commercial research" in report
    assert all(f"figures/{figure}" in report for figure in FACES_FIGURES)
    assert f"{faces_metrics['test_bpd']:.3f}" in report  # the measured numbers, not placeholders

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("celeba-vae")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.run_name for run in runs] == ["conv_faces"]
    run = runs[0]
    assert [m.step for m in client.get_metric_history(run.info.run_id, "test_neg_elbo")] == [1]
    assert "final/shells/r_1" in run.data.metrics and "final/probe/Smiling" in run.data.metrics
    assert run.data.params["model.image_size"] == "64"
    assert "figures/faces_shells.png" in [a.path for a in client.list_artifacts(run.info.run_id, "figures")]


def test_the_beta_study_measures_every_shapes_model_and_the_cifar_pair(smoke_project):
    project, env, dvc, output = smoke_project
    for stage in ("make_shapes", "train_shapes@1", "train_shapes@5", "train_shapes_ae", "evaluate_shapes@5",
                  "compare_betas"):
        assert f"'{stage}'" in output, stage
    study = json.loads((project / "reports" / "metrics_beta.json").read_text())
    assert set(study["shapes"]) == {"1", "5"} and set(study["cifar10"]) == {"1", "5"}
    for label, row in study["shapes"].items():
        assert row["beta"] == float(label) and row["epochs"] == 1
        assert 0 < row["recon_mse"] < 1 and row["kl"] > 0 and 0 <= row["active_units"] <= row["latent_dim"] == 10
        assert 0 <= row["mig"] <= 1 and 0 <= row["dci"] <= 1 and row["gaussian_tc"] >= 0
        assert len(row["kl_per_dim"]) == 10 and set(row["factor_dims"]) == {
            "shape", "hue", "scale", "rotation", "x position", "y position"}
        assert row["path_max_over_mean"] >= 1 and row["prior_nn_mse"] >= 0
    autoencoder = study["shapes_autoencoder"]
    assert 0 < autoencoder["recon_mse"] < 1 and 0 <= autoencoder["mig"] <= 1 and "kl" not in autoencoder
    metrics = json.loads((project / "reports" / "metrics.json").read_text())
    for name, label in (("conv", "1"), ("conv_beta5", "5")):
        assert study["cifar10"][label]["recon_mse"] == metrics[name]["test_recon_mse"]
        assert study["cifar10"][label]["active_units"] == metrics[name]["active_units"]
        assert len(study["cifar10"][label]["kl_per_dim"]) == metrics[name]["latent_dim"]
    assert study["reparameterization"] is None or study["reparameterization"]["variance_ratio_median"] > 0

    for figure in BETA_FIGURES:
        path = project / "reports" / "figures" / figure
        assert path.is_file() and path.stat().st_size > 1000, figure
    theory = (project / "reports" / "theory.md").read_text()
    assert theory.count("\n## ") == 4
    assert f"{autoencoder['prior_nn_mse']:.4f} for the autoencoder" in theory  # the measured numbers
    summary = (project / "reports" / "summary.md").read_text()
    assert len(summary.split()) <= 300 and "On shapes, where the factors are known" in summary
    assert f"{study['shapes']['5']['recon_mse']:.3g}" in summary
    report = (project / "reports" / "README.md").read_text()
    assert "(theory.md)" in report and all(f"figures/{figure}" in report for figure in BETA_FIGURES)
    for name in ("shapes_beta1", "shapes_beta5", "shapes_ae"):
        rows = (project / "reports" / "curves" / f"{name}.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,") and len(rows) == 2

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    experiment = client.get_experiment_by_name("shapes-beta")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["shapes_ae", "shapes_beta1", "shapes_beta5"]
    for name in ("shapes_beta1", "shapes_beta5"):
        assert [m.step for m in client.get_metric_history(runs[name].info.run_id, "test_neg_elbo")] == [1]
        assert "final/mig" in runs[name].data.metrics and "final/dci" in runs[name].data.metrics
    assert runs["shapes_beta5"].data.params["beta"] == "5.0"
    assert "final/recon_mse" in runs["shapes_ae"].data.metrics
