"""The whole DAG, end to end: `dvc repro` on tiny params in a temporary copy of the project,
logging to a loopback `mlflow server` as a team would; then queued experiments beside it."""

import configparser
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import torch
import yaml

from conftest import ROOT, all_finite, sha256, write_celeba_archive, write_png_archive


def run(cmd, cwd, env, expect=0):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1200)
    assert done.returncode == expect, (
        f"{cmd} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done.stdout + done.stderr


def repro_params(params: dict, mirror: Path) -> dict:
    """params.yaml (raw: it is written back) shrunk for a whole repro on the mirror's tiny archives."""
    datasets = params["datasets"]
    datasets["cifar10"].update(
        mirror_dirs=[str(mirror)],
        png_sha256=sha256(mirror / "cifar10-png.tar.gz"),
        allow_download=False,
    )
    datasets["faces"].update(
        mirror_dirs=[str(mirror)],
        archive_sha256=sha256(mirror / "celeba-10k.tar.gz"),
        test_count=12,
    )
    datasets["shapes"].update(hue=2, scale=2, rotation=2, x=3, y=3, test_count=60)
    for run_params in [*params["runs"].values(), *params["sweeps"].values()]:
        run_params.update(
            epochs=1, batch_size={"cifar10": 64, "faces": 16, "shapes": 32}[run_params["dataset"]]
        )
    params["runs"]["evaluator"]["model"]["width"] = 4
    params["runs"]["evaluator"]["holdout"] = 50
    for settings in params["evaluate"].values():
        settings["batch_size"] = 50
    params["evaluate"]["shapes"].update(code_count=100, prior_samples=16, paths=4)
    params["evaluate"]["cifar10"]["gmm_components"] = 2
    params["compare"]["sample_quality"].update(sample_count=100, batch_size=50)
    params["compare"]["beta_study"].update(cifar_codes=50, gradient_images=4, gradient_samples=8)
    return params


def shrink_sweep(params: dict, betas=(1.0, 5.0), seeds=(0, 1)) -> list[str]:
    """Keep two betas x two seeds (and two autoencoders) of the shapes sweeps, so the smoke run
    stays short; returns the sweeps removed."""
    removed = [
        name
        for name, sweep in params["sweeps"].items()
        if sweep["objective"] == "vae" and sweep["beta"] not in betas
    ]
    for name in removed:
        del params["sweeps"][name]
    for sweep in params["sweeps"].values():
        sweep["seeds"] = list(seeds)
    study = params["compare"]["beta_study"]
    study["runs"] = [name for name in study["runs"] if name not in removed]
    return removed


def without_runs(dvc_yaml: str, removed: list[str]) -> str:
    """dvc.yaml without the list entries and keys that name a removed run (the beta study's deps
    and params, the render stage's figure folders, the plots' curves)."""
    names = re.compile(r"\b(" + "|".join(map(re.escape, removed)) + r")\b")

    def prune(node):
        if isinstance(node, list):
            return [
                prune(item) for item in node if not (isinstance(item, str) and names.search(item))
            ]
        if isinstance(node, dict):
            return {key: prune(value) for key, value in node.items() if not names.search(str(key))}
        return node

    return yaml.safe_dump(prune(yaml.safe_load(dvc_yaml)), sort_keys=False)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    """A loopback `mlflow server` (its own sqlite store and artifact folder); yields its URI."""
    home = tmp_path_factory.mktemp("mlflow_server")
    with socket.socket() as probe:  # a free port
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"http://127.0.0.1:{port}"
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--host", "127.0.0.1",
        "--port", str(port),
        "--workers", "1",
        "--backend-store-uri", f"sqlite:///{home}/mlflow.db",
        "--artifacts-destination", str(home / "artifacts"),
    ]  # fmt: skip
    log = (home / "server.log").open("w")
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    server = subprocess.Popen(  # in a session of its own: its workers are stopped with it
        command, cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(uri + "/health", timeout=5).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                os.killpg(server.pid, signal.SIGKILL)
                pytest.fail(f"mlflow server did not start:\n{(home / 'server.log').read_text()}")
            time.sleep(1)
    yield uri
    with contextlib.suppress(ProcessLookupError):  # it may have died on its own
        os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    log.close()


@pytest.fixture(scope="module")
def smoke_project(tmp_path_factory, mlflow_server):
    project = tmp_path_factory.mktemp("project")
    for item in (".gitignore", "dvc.yaml", "params.yaml", "pipeline", "src"):
        (shutil.copytree if (ROOT / item).is_dir() else shutil.copy)(ROOT / item, project / item)
    mirror = project.parent / "mirror"
    mirror.mkdir()
    write_png_archive(mirror / "cifar10-png.tar.gz", train_count=300, test_count=100)
    write_celeba_archive(mirror / "celeba-10k.tar.gz", count=36)
    params = repro_params(yaml.safe_load((project / "params.yaml").read_text()), mirror)
    removed = shrink_sweep(params)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (project / "dvc.yaml").write_text(without_runs((project / "dvc.yaml").read_text(), removed))

    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DVC_NO_ANALYTICS": "1",
        "OMP_NUM_THREADS": "2",
    }
    for variable in ("VAELAB_DATA_DIR", "VAELAB_FACES_DIR"):
        env.pop(variable, None)
    dvc = [sys.executable, "-m", "dvc"]
    run(["git", "init", "-q"], project, env)
    run(dvc + ["init", "-q"], project, env)
    run(dvc + ["config", "core.analytics", "false"], project, env)
    output = run(dvc + ["repro"], project, env)
    return project, env, dvc, params, output


def test_repro_runs_every_stage_and_evaluates_every_run(smoke_project):
    project, _, _, params, output = smoke_project
    for dataset in params["datasets"]:
        assert f"'fetch@{dataset}'" in output
    for name in params["runs"]:
        assert f"'train@{name}'" in output and f"'evaluate@{name}'" in output
        metrics = json.loads((project / "reports" / "eval" / f"{name}.json").read_text())
        assert metrics and all_finite(metrics), name
        assert (project / "reports" / "figures" / name).is_dir()
        rows = (project / "reports" / "curves" / f"{name}.csv").read_text().splitlines()
        assert rows[0].startswith("epoch,") and len(rows) == 2
    for name, sweep in params["sweeps"].items():
        assert f"'train_sweep@{name}'" in output and f"'evaluate_sweep@{name}'" in output
        seeds = [f"s{seed}" for seed in sweep["seeds"]]
        for folder in ("models", "reports/figures"):
            assert sorted(p.name for p in (project / folder / name).iterdir()) == seeds
        for folder, suffix in (("reports/eval", ".json"), ("reports/curves", ".csv")):
            found = sorted(p.name for p in (project / folder / name).iterdir())
            assert found == [seed + suffix for seed in seeds]
        headline = json.loads((project / "reports" / "metrics" / f"{name}.json").read_text())
        assert set(headline) == {"mean", "std"} and all_finite(headline)
        assert "recon_mse" in headline["mean"] and headline["std"]["recon_mse"] > 0
    for stage in ("sample_quality", "beta_study", "render"):
        assert f"'{stage}'" in output
    conv = json.loads((project / "reports" / "eval" / "conv.json").read_text())
    assert 0 < conv["test_recon_mse"] < 1 and conv["test_kl"] > 0 and conv["beta"] == 1.0
    assert json.loads((project / "reports" / "eval" / "conv_beta5.json").read_text())["beta"] == 5.0
    summary = (project / "reports" / "summary.md").read_text()
    assert 0 < len(summary.split()) <= 300
    assert (project / "reports" / "theory.md").read_text().count("\n## ") == 4


def test_every_training_stage_has_one_mlflow_run_and_no_stage_adds_a_paramless_one(smoke_project):
    """On the server: downstream stages find their runs by tag, never by a local id."""
    project, env, _, params, _ = smoke_project
    assert not (project / "mlflow.db").exists()  # everything went to the server
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    expected = dict(params["runs"])  # and each seed's run `<sweep>/s<seed>` of every sweep
    for sweep_name, sweep in params["sweeps"].items():
        expected.update({f"{sweep_name}/s{seed}": sweep for seed in sweep["seeds"]})
    assert sorted(r.data.tags["vaelab.run"] for r in runs) == sorted(expected)
    for ml_run in runs:
        name = ml_run.data.tags["vaelab.run"]
        assert ml_run.info.run_name.startswith(f"{name}-")  # with its params hash
        dataset, objective = expected[name]["dataset"], expected[name]["objective"]
        assert [i.dataset.name for i in ml_run.inputs.dataset_inputs] == [dataset]
        assert ml_run.data.params["objective"] == objective and ml_run.data.tags["data_sha256"]
        key = "test_accuracy" if objective == "classifier" else "test_recon"
        assert [m.step for m in client.get_metric_history(ml_run.info.run_id, key)] == [1]
        assert any(k.startswith("final.") for k in ml_run.data.metrics), name  # added by evaluate


def test_dvc_sees_everything_up_to_date_and_a_second_repro_is_a_no_op(smoke_project):
    project, env, dvc, _, _ = smoke_project
    assert "up to date" in run(dvc + ["status"], project, env)
    assert "Running stage" not in run(dvc + ["repro"], project, env)


def test_dvc_plots_render_offline_with_the_committed_template(smoke_project):
    project, env, dvc, _, _ = smoke_project
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    template = config["plots"]["html_template"]
    (project / ".dvc" / template).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / ".dvc" / template, project / ".dvc" / template)
    run(dvc + ["config", "plots.html_template", template], project, env)
    run(dvc + ["plots", "show", "-o", "plots_out"], project, env)
    html = (project / "plots_out" / "index.html").read_text()
    assert "vegaEmbed" in html and "bits_per_dim" in html and "shapes_kl" in html
    assert "<script src=" not in html and "cdn.jsdelivr" not in html  # nothing from the network
    assert "reports_figures_conv_samples.png" in html or "samples.png" in html  # image plots too


def test_a_local_remote_shares_data_and_models_without_retraining(smoke_project, tmp_path):
    project, env, dvc, _, _ = smoke_project
    remote = tmp_path / "remote"
    run(dvc + ["remote", "add", "-d", "--local", "shared", str(remote)], project, env)
    try:
        run(dvc + ["push"], project, env)
    finally:
        run(dvc + ["remote", "remove", "--local", "shared"], project, env)
    # A teammate: a copy of what git holds (no data/, models/, checkpoints/), then `dvc pull`.
    clone = tmp_path / "clone"
    shutil.copytree(
        project,
        clone,
        ignore=shutil.ignore_patterns("data", "models", "checkpoints", "cache", "tmp", "mlflow.db"),
    )
    run(dvc + ["remote", "add", "-d", "shared", str(remote)], clone, env)
    run(dvc + ["pull"], clone, env)
    assert (clone / "models" / "conv" / "model.pt").is_file()
    assert (clone / "data" / "cifar10.npz").is_file()
    assert "up to date" in run(dvc + ["status"], clone, env)  # nothing to retrain
    assert "Running stage" not in run(dvc + ["repro"], clone, env)


def test_editing_an_imported_module_makes_its_stages_stale(smoke_project):
    project, env, dvc, _, _ = smoke_project
    module = project / "src" / "vaelab" / "runtime.py"
    original = module.read_text()
    module.write_text(original + "\n# an edit\n")
    try:
        status = run(dvc + ["status", "--json"], project, env)
    finally:
        module.write_text(original)
    stale = set(json.loads(status))
    assert {"train@conv", "evaluate@conv", "sample_quality"} <= stale
    assert not {"fetch@cifar10", "fetch@shapes"} & stale  # fetch never imports runtime


def test_a_killed_training_resumes_to_the_same_weights_as_an_uninterrupted_one(
    smoke_project, tmp_path
):
    project, env, _, params, _ = smoke_project
    params = json.loads(json.dumps(params))
    params["runs"]["conv"].update(epochs=3)
    copies = {name: tmp_path / name for name in ("straight", "killed")}
    for copy in copies.values():
        for item in ("params.yaml", "pipeline", "src", "data/cifar10.npz"):
            (copy / item).parent.mkdir(parents=True, exist_ok=True)
            copier = shutil.copytree if (project / item).is_dir() else shutil.copy
            copier(project / item, copy / item)
        (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    local_env = {**env, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db"}
    train = [sys.executable, "pipeline/train.py", "conv"]
    run(train, copies["straight"], local_env)

    process = subprocess.Popen(
        train, cwd=copies["killed"], env=local_env, stdout=subprocess.PIPE, text=True
    )
    for line in process.stdout:  # kill -9 right after the first epoch's checkpoint is written
        if line.startswith("conv epoch 1/3"):
            os.kill(process.pid, signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    assert not (copies["killed"] / "models" / "conv" / "model.pt").exists()
    # Resumed against another store (moved, reset, another server): a new MLflow run, which
    # gets the epochs trained before the kill too.
    moved = f"sqlite:///{tmp_path}/moved.db"
    resumed = run(train, copies["killed"], {**local_env, "MLFLOW_TRACKING_URI": moved})
    assert "resuming after epoch 1" in resumed and "training goes on in a new run" in resumed
    run_id = json.loads((copies["killed"] / "models" / "conv" / "run.json").read_text())["run_id"]
    history = mlflow.MlflowClient(moved).get_metric_history(run_id, "test_neg_elbo")
    assert sorted(m.step for m in history) == [1, 2, 3]
    straight, killed = (
        torch.load(copies[name] / "models" / "conv" / "model.pt", weights_only=True)
        for name in ("straight", "killed")
    )
    assert straight.keys() == killed.keys()
    assert all(torch.equal(straight[k], killed[k]) for k in straight)


def test_same_params_seed_and_threads_give_identical_metrics(smoke_project):
    project, env, dvc, _, _ = smoke_project
    before = (project / "reports" / "eval" / "fc.json").read_text()
    run(dvc + ["repro", "-f", "-s", "train@fc"], project, env)
    run(dvc + ["repro", "-f", "-s", "evaluate@fc"], project, env)
    assert (project / "reports" / "eval" / "fc.json").read_text() == before


def test_queued_experiments_run_two_at_a_time_and_keep_their_mlflow_runs(smoke_project):
    """`dvc exp run --queue` + `dvc queue start -j 2`: each experiment runs in a temporary copy of
    the repository that DVC deletes afterwards; its MLflow run must land in the repository's own
    store (found from DVC_ROOT), tagged with the experiment's name."""
    project, env, dvc, _, _ = smoke_project
    env = {key: value for key, value in env.items() if key != "MLFLOW_TRACKING_URI"}
    for role in ("AUTHOR", "COMMITTER"):  # DVC commits each experiment: git needs an identity
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = "vaelab tests", "tests@vaelab.invalid"
    run(["git", "add", "-A"], project, env)
    run(["git", "commit", "-q", "-m", "baseline"], project, env)  # experiments need a baseline
    store = f"sqlite:///{project}/mlflow.db"
    # Created before the two jobs start, as after any earlier run: two processes creating one
    # sqlite store at the same moment race on its schema (MLflow initialises it unlocked).
    client = mlflow.MlflowClient(tracking_uri=store)
    client.search_experiments()
    learning_rates = {"lr-two": "0.002", "lr-three": "0.003"}
    for name, lr in learning_rates.items():
        queue = ["exp", "run", "--queue", "--name", name, "-S", f"runs.fc.lr={lr}", "train@fc"]
        run(dvc + queue, project, env)
    try:
        # The workers outlive `queue start` and hold its stdout: no capture, or it never returns.
        quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=120)
        started = subprocess.run(dvc + ["queue", "start", "-j", "2"], cwd=project, env=env, **quiet)
        assert started.returncode == 0
        deadline = time.monotonic() + 900
        while True:
            status = run(dvc + ["queue", "status"], project, env)
            rows = [line for line in status.splitlines() if any(n in line for n in learning_rates)]
            if len(rows) == 2 and not any(s in status for s in ("Queued", "Running")):
                break
            assert time.monotonic() < deadline, status
            time.sleep(5)
    finally:
        run(dvc + ["queue", "stop", "--kill"], project, env)
    assert all("Success" in row for row in rows), status

    runs = [r for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    assert sorted((r.data.tags["dvc.exp_name"], r.data.params["lr"]) for r in runs) == sorted(
        learning_rates.items()
    )
    assert all(r.data.tags["vaelab.run"] == "fc" and r.info.status == "FINISHED" for r in runs)
    # Two at a time: each training run started before the other ended.
    assert max(r.info.start_time for r in runs) < min(r.info.end_time for r in runs)
    assert not list((project / ".dvc" / "tmp" / "exps").rglob("mlflow.db"))
