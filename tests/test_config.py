"""params.yaml is checked once, before any work: each bad value names its key and the fix."""

import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from vaelab.config import check_params, load_params, run_config, stage_name, sweep_of, sweep_runs
from vaelab.errors import VaelabError
from vaelab.losses import LIKELIHOODS


def project_params() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def test_the_project_params_are_valid_and_hold_the_required_study():
    params = load_params(ROOT / "params.yaml")
    assert run_config(params, "conv_beta5")["beta"] == 5.0
    assert run_config(params, "conv")["beta"] == 1.0
    assert {run["objective"] for run in params["runs"].values()} == {"vae", "ae", "classifier"}
    assert {run["model"]["arch"] for run in params["runs"].values()} == {"fc", "conv", "resnet"}
    for run in params["runs"].values():
        assert run["dataset"] in params["datasets"] and run["epochs"] >= 1 and run["lr"] > 0


def test_a_sweep_is_one_run_per_seed_and_stands_for_them_in_a_comparison():
    params = load_params(ROOT / "params.yaml")
    seeds = project_params()["sweeps"]["shapes_b5"]["seeds"]
    runs = sweep_runs(params, "shapes_b5")
    assert runs == [f"shapes_b5/s{seed}" for seed in seeds] and len(seeds) >= 3
    assert [run_config(params, run)["seed"] for run in runs] == seeds
    assert {run_config(params, run)["beta"] for run in runs} == {5.0}
    # A run's config (its checkpoint key) is its own.
    assert "seeds" not in run_config(params, runs[0])
    assert sweep_runs(params, "conv") is None and sweep_runs(params, runs[0]) is None
    with pytest.raises(
        VaelabError, match=r"unknown run or sweep 'shapes_b7'; choose one of .*shapes_b5"
    ):
        sweep_runs(params, "shapes_b7")
    study = params["compare"]["beta_study"]
    assert set(runs) <= set(study["runs"]) and "shapes_b5" not in study["runs"]
    assert stage_name("train", runs[1]) == "train_sweep@shapes_b5"
    assert stage_name("evaluate", "conv") == "evaluate@conv"
    assert sweep_of(runs[1]) == "shapes_b5" and sweep_of("conv") is None


DROP = object()  # as the value: remove the key


def one_of(names) -> str:
    """pydantic's words for a value outside `names`: "'a', 'b', 'c'" (a tag) or "'a' or 'b'"."""
    return r" is invalid \(.*" + "(, | or )".join(re.escape(f"'{name}'") for name in names)


BETA_STUDY, SAMPLE_QUALITY = "compare.beta_study", "compare.sample_quality"
# (dotted key, the value it is set to, the message after the key): a value that is a function
# is called with the params and its result is set.
INVALID = [
    ("runs.conv.lr", "fast", r" is invalid \(Input should be a valid number.*, got 'fast'\)"),
    ("runs.conv.lr", float("nan"), r" is invalid \(.*, got nan\)"),
    ("runs.conv.lr", "inf", r" is invalid \(Input should be a finite number"),
    ("runs.conv.beta", float("inf"), r" is invalid \(Input should be a finite number"),
    ("runs.conv.beta", -1, r" is invalid \(.*greater than or equal to 0, got -1\)"),
    ("runs.conv.epochs", 2.5, r" is invalid \(Input should be a valid integer"),
    ("runs.conv.epochs", True, " must be a number"),
    ("runs.conv.seed", DROP, " is missing"),
    ("runs.conv.dataset", "mnist", " names no dataset"),
    # The schema knows the names the code does.
    ("runs.conv.objective", "gan", one_of(["vae", "ae", "classifier"])),
    ("runs.conv.model.arch", "transformer", one_of(["fc", "conv"])),
    ("runs.evaluator.model.arch", "vgg", one_of(["resnet"])),
    ("datasets.faces.source", "imagenet", one_of(["cifar10", "celeba", "shapes"])),
    ("runs.conv.model.likelihood.kind", "poisson", one_of(LIKELIHOODS) + ", got 'poisson'"),
    ("runs.conv.model.widths", [], r" is invalid \(List should have at least 1 item"),
    ("runs.conv.model.hiden", [512], " is not a key of runs.conv.model; remove or rename it"),
    ("runs.conv.model.fc_hidden", 512, " is not a key of runs.conv.model; remove or rename it"),
    ("runs.conv.model.likelihood.mixtures", 1, " is not a key of runs.conv.model.likelihood"),
    ("runs.conv.kl_warmup_fraction", 1.5, r" is invalid \(Input should be less than 1"),
    ("runs.evaluator.mixed_precision", "yes", ""),
    ("runs.evaluator.kl_warmup_fraction", 0.1, " is not a key of runs.evaluator"),
    ("runs.evaluator.holdout", DROP, " is missing"),
    (
        "runs.evaluator.dataset",
        "faces",
        r" must be a labelled dataset \(cifar10\) for a classifier",
    ),
    ("runs.fc.grad_clip", -1, r" is invalid \(.*greater than or equal to 0"),
    ("runs.fc.warmup_fraction", DROP, " is missing"),
    ("runs.conv/s1", lambda p: p["runs"]["conv"], " has a / in its name"),
    ("runs", DROP, " is missing"),
    ("datasets.cifar10.official_md5", DROP, " is missing"),
    ("datasets.shapes.hues", 3, " is not a key of datasets.shapes"),
    ("evaluate.shapes", DROP, " is missing"),
    ("evaluate.shapes.path_step", 3, " is not a key of evaluate.shapes; remove or rename it"),
    ("evaluate.shape", lambda p: p["evaluate"]["shapes"], " names no dataset of datasets"),
    ("evaluate.cifar10.traversal_span", 0, r" is invalid \(.*greater than 0, got 0\)"),
    ("sweeps.shapes_b5.lr", "fast", r" is invalid \(.*valid number.*, got 'fast'\)"),
    ("sweeps.shapes_b5.seeds", [0, 1, 0], " must not repeat a seed"),
    ("sweeps.shapes_b5.seeds", [], r" is invalid \(List should have at least 1 item"),
    ("sweeps.shapes_b5.seed", 3, " is not a sweep's key"),
    ("sweeps.shapes_b5.mixed_precison", "cuda", " is not a key of sweeps.shapes_b5; remove"),
    ("sweeps.shapes_ae.kl_warmup_fraction", 1.5, r" is invalid \(Input should be less than 1"),
    ("sweeps.conv", lambda p: p["sweeps"]["shapes_b5"], " must be named unlike every run"),
    ("tracking.sample_evry", 2, " is not a key"),
    ("render.sed", 2, " is not a key of render"),
    ("rnder", {"seed": 0}, " is not a key of params.yaml"),
    (f"{SAMPLE_QUALITY}.samplers", ["gmm"], r" must hold prior once, got \['gmm'\]"),
    (f"{SAMPLE_QUALITY}.samplers", ["prior", "prior"], " must hold prior once"),
    (f"{SAMPLE_QUALITY}.samplers", ["prior", "flow"], r"\[1\]" + one_of(["prior", "gmm"])),
    (f"{SAMPLE_QUALITY}.samplers", "prior", r" is invalid \(Input should be a valid list"),
    (f"{SAMPLE_QUALITY}.runs", ["fc", "vq"], " names 'vq', which is neither a run"),
    ("runs.conv.model.widths", [64, 0], r"\[1\] is invalid \(.*or equal to 1, got 0\)"),
    ("runs.fc.model.hidden", [0.5], r"\[0\] is invalid \(Input should be a valid integer"),
    (f"{SAMPLE_QUALITY}.temperatures", [0.8], " is not a key of compare.sample_quality"),
    (f"{BETA_STUDY}.seeds", [0, 1], " is not a key of compare.beta_study"),
    (f"{BETA_STUDY}.autoencoders", ["shapes_b1"], r" must hold autoencoder \(shapes_ae/s0\)"),
    # The runs a comparison names are checked against each other before any stage runs.
    (
        f"{SAMPLE_QUALITY}.judge",
        "conv",
        " names conv, whose objective is vae, where a run of objective classifier belongs",
    ),
    (
        f"{SAMPLE_QUALITY}.runs",
        ["fc", "faces"],
        r" mixes datasets \(evaluator: cifar10, fc: cifar10, faces: faces\)",
    ),
    (
        f"{BETA_STUDY}.autoencoders",
        lambda p: [*p["compare"]["beta_study"]["autoencoders"], "shapes_b1"],
        " names shapes_b1/s0, whose objective is vae, where a run of objective ae belongs",
    ),
    (
        f"{BETA_STUDY}.runs",
        ["shapes_b1", "shapes_b5/s0"],
        r" must hold every beta with the same distinct seeds, got beta 1: seeds \[0, 1, 2\]; "
        r"beta 5: seeds \[0\]",
    ),
    (f"{BETA_STUDY}.cifar_pair", ["conv"], " must name two runs of compare.sample_quality.runs"),
    (f"{BETA_STUDY}.cifar_pair", ["conv", "faces"], " must name two runs of compare.sample_q"),
    (f"{BETA_STUDY}.cifar_pair", ["conv", "fc"], " must name two runs of different beta"),
    (  # betas equal as metrics_beta.json names them ("1"): one entry would overwrite the other
        f"{BETA_STUDY}.cifar_pair",
        lambda p: p["runs"]["conv_beta5"].update(beta=1.0000001) or ["conv", "conv_beta5"],
        " must name two runs of different beta",
    ),
]


@pytest.mark.parametrize("key, value, message", INVALID)
def test_invalid_params_name_the_key_and_the_fix(key, value, message):
    """Every section refuses a key it does not know (a typo would otherwise go unnoticed) and
    every bad value names its key."""
    params = project_params()
    *parents, last = key.split(".")
    section = params
    for name in parents:
        section = section[name]
    if value is DROP:
        del section[last]
    else:
        section[last] = value(params) if callable(value) else value
    with pytest.raises(VaelabError, match=re.escape(key) + message) as failure:
        check_params(params)
    assert "\n" not in str(failure.value) and "fix it in params.yaml" in str(failure.value)


def test_the_judged_runs_hold_a_baseline_beside_the_beta_pair():
    params = project_params()
    params["compare"]["sample_quality"]["runs"] = params["compare"]["beta_study"]["cifar_pair"]
    with pytest.raises(VaelabError, match="cifar_pair must name two runs of .*hold a third"):
        check_params(params)


def train(tmp_path, params: dict, run: str) -> subprocess.CompletedProcess:
    """`pipeline/train.py <run>` in a folder holding only `params`."""
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    command = [sys.executable, str(ROOT / "pipeline" / "train.py"), run]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_stage_reports_bad_params_in_one_line_before_any_work(tmp_path):
    params = project_params()
    params["runs"]["conv"]["lr"] = "fast"
    done = train(tmp_path, params, "fc")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: params.yaml: runs.conv.lr is invalid (Input should be a valid number, unable to "
        "parse string as a number, got 'fast'); fix it in params.yaml (or dvc exp run -S "
        "runs.conv.lr=...)"
    ]
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()


def test_an_unknown_run_name_lists_the_choices(tmp_path):
    done = train(tmp_path, project_params(), "vq")
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "unknown run or sweep 'vq'; choose one of" in done.stderr and "conv_beta5" in done.stderr


def test_dvc_exp_run_set_param_rewrites_only_the_changed_line(tmp_path):
    # `dvc exp run -S` rewrites params.yaml through ruamel (80-column lines, null as empty): the
    # file's layout is chosen so that one changed param changes one line.
    from dvc.utils.serialize import modify_yaml

    copy = tmp_path / "params.yaml"
    copy.write_text((ROOT / "params.yaml").read_text())
    with modify_yaml(copy) as params:
        params["runs"]["conv"]["lr"] = 0.0003
        params["runs"]["conv"]["model"]["likelihood"]["kind"] = "gaussian_fixed"
    before = (ROOT / "params.yaml").read_text().splitlines()
    after = copy.read_text().splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert len(changed) == 2 and "0.0003" in changed[1][1] and "gaussian_fixed" in changed[0][1]
    # The shapes sweep's shared settings: one line in the template moves every run built from it.
    with modify_yaml(copy) as params:
        params["sweep_templates"]["shapes"]["epochs"] = 9
    swept = copy.read_text().splitlines()
    assert len([a for a, b in zip(after, swept, strict=True) if a != b]) == 1
    runs = load_params(copy)["runs"]
    sweep = [name for name in runs if name.startswith("shapes_")]
    assert len(sweep) == 18 and all(runs[name]["epochs"] == 9 for name in sweep)


def test_the_checked_params_keep_their_types_and_defaults():
    params = project_params()
    params["compare"]["sample_quality"].pop("samplers", None)
    params["compare"]["beta_study"].pop("autoencoders")
    conv, ae = params["runs"]["conv"], params["sweeps"]["shapes_ae"]
    conv.update(lr="1e-3", epochs=12.0, beta=2)  # YAML 1.1 reads 1e-3 as a string
    conv.pop("mixed_precision")
    conv["model"]["likelihood"] = {"kind": "gaussian_fixed", "sigma": 1}
    ae.update(beta=3.0)
    ae.pop("kl_warmup_fraction")
    params["runs"]["evaluator"].pop("degrade")
    checked = check_params(params)
    conv = checked["runs"]["conv"]
    assert conv["lr"] == 0.001 and type(conv["epochs"]) is int and type(conv["beta"]) is float
    assert conv["mixed_precision"] is False and conv["kl_warmup_fraction"] == 0.0
    assert conv["model"]["likelihood"] == {"kind": "gaussian_fixed", "sigma": 1.0}
    assert type(conv["model"]["likelihood"]["sigma"]) is float
    ae = checked["runs"]["shapes_ae/s1"]  # the autoencoder's objective is recon alone
    assert ae["beta"] == 0.0 and "kl_warmup_fraction" not in ae and ae["seed"] == 1
    assert checked["runs"]["evaluator"]["degrade"] is False
    assert checked["datasets"]["shapes"]["mirror_dirs"] == []
    assert checked["sweeps"]["shapes_ae"] == ["shapes_ae/s0", "shapes_ae/s1", "shapes_ae/s2"]
    assert list(checked["evaluate"]) == ["cifar10", "faces", "shapes"]
    assert checked["compare"]["sample_quality"]["samplers"] == ["prior", "gmm"]
    study = checked["compare"]["beta_study"]
    assert study["autoencoders"] == [study["autoencoder"]]
