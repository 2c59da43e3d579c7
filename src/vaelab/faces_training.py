"""The `train_faces` stage: the conv VAE on CelebA faces, as `conv_faces` in MLflow experiment `celeba-vae`.

The same loop, checkpoints, resume, curves and model files as the CIFAR-10 models (`train.fit`,
`train.checkpoint_dir`, `checkpoints.save_model`); only the data and the experiment differ. The
model's image size is taken from `faces.image_size`, the one place it is set.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .checkpoints import TRAINING_STATE, load_training_state, save_model
from .data import file_digest
from .errors import VaelabError
from .faces import load_faces
from .models import VAE, build_model
from .params import faces_section, training_section
from .runtime import resolve_device, seed_everything
from .train import CHECKPOINT_ROOT, CURVES_ROOT, MODELS_ROOT, checkpoint_dir, fit, write_curves

FACES_MODEL = "conv_faces"


def faces_training_section(params: dict) -> dict:
    """The checked `conv_faces` section with `image_size` set from `faces.image_size`."""
    section = training_section(params, FACES_MODEL)
    section["model"] = {**section["model"], "image_size": faces_section(params)["image_size"]}
    try:
        build_model(section["model"])
    except ValueError as e:
        raise VaelabError(f"params.yaml: {FACES_MODEL}.model.widths does not fit faces.image_size ({e})") from None
    return section


def run_faces_training(params: dict, resume: str = "auto") -> dict:
    """Train conv_faces; write models/conv_faces/ and reports/curves/conv_faces.csv; log to MLflow.
    resume: "auto" continues a compatible checkpoint, "always" requires one, "never" discards it."""
    import mlflow

    from . import tracking
    from .figures import sample_grid_image

    faces, section = faces_section(params), faces_training_section(params)
    device, seed = resolve_device(params["device"]), params["seed"]
    tracking.check_tracking_server()
    dataset = load_faces(Path(faces["path"]))
    if dataset["x_train"].shape[1] != faces["image_size"]:
        raise VaelabError(f"{faces['path']} holds {dataset['x_train'].shape[1]}-px faces but faces.image_size is "
                          f"{faces['image_size']}; rerun dvc repro fetch_faces")
    data_sha256 = file_digest(Path(faces["path"]), "sha256")
    x_train, x_test = dataset["x_train"].to(device), dataset["x_test"].to(device)
    ckpt_dir = checkpoint_dir(CHECKPOINT_ROOT, FACES_MODEL, section, seed, data_sha256, (len(x_train), len(x_test)))
    state = load_training_state(ckpt_dir / TRAINING_STATE)
    if resume == "always" and state is None:
        raise VaelabError(f"--resume: no checkpoint for this configuration of {FACES_MODEL} in {ckpt_dir}; "
                          "run without --resume to train from scratch")
    if resume == "never" and state is not None:
        shutil.rmtree(ckpt_dir)
        state = None

    seed_everything(seed)
    model = build_model(section["model"])
    print(f"{FACES_MODEL}: {sum(p.numel() for p in model.parameters()):,} parameters, {len(x_train):,} training "
          f"faces at {faces['image_size']} px, device {device}"
          + (f", resuming after epoch {state['epoch']}" if state else ""))
    sample_every = int(params["mlflow"].get("sample_every", 5))
    fixed_z = torch.randn(16, model.latent_dim, generator=torch.Generator().manual_seed(seed))
    curves_path = CURVES_ROOT / f"{FACES_MODEL}.csv"
    history_so_far = list(state["history"]) if state else []

    with tracking.model_run(faces["experiment"], FACES_MODEL, state.get("mlflow_run_id") if state else None) as run:
        if state is None:
            mlflow.log_params(tracking.flatten("", {"model_name": FACES_MODEL, "seed": seed, "device": str(device),
                                                    "data": {k: faces[k] for k in ("image_size", "crop_fraction",
                                                                                   "max_images", "test_count")},
                                                    **section}))
            mlflow.set_tags({"git_commit": tracking.git_commit(), "data_sha256": data_sha256,
                             "model_name": FACES_MODEL, "data_source": dataset["source"]})

        def on_epoch(epoch: int, row: dict, trained: VAE) -> None:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            history_so_far.append(row)
            write_curves(curves_path, history_so_far)
            if epoch % sample_every == 0 or epoch == section["epochs"]:
                mlflow.log_image(sample_grid_image(trained, fixed_z), artifact_file=f"samples/epoch_{epoch:03d}.png")

        history = fit(model, section, x_train, x_test, device, ckpt_dir / TRAINING_STATE, seed, state=state,
                      on_epoch=on_epoch, extra_state={"mlflow_run_id": run.info.run_id}, label=FACES_MODEL)
        model_dir = MODELS_ROOT / FACES_MODEL
        config = {"name": FACES_MODEL, **section, "seed": seed, "data_sha256": data_sha256,
                  "data_source": dataset["source"], "epochs_trained": len(history),
                  "train_seconds": sum(r["epoch_seconds"] for r in history)}
        save_model(model_dir, model, config)
        tracking.record_run(model_dir, run)
        write_curves(curves_path, history)
        mlflow.log_artifacts(str(model_dir), artifact_path="state_dict")
        # As for CIFAR-10: the servable generator z -> images, exported without pickle (pt2).
        mlflow.pytorch.log_model(model.cpu().eval().decoder, name="decoder", serialization_format="pt2",
                                 input_example=torch.randn(2, model.latent_dim).numpy(),
                                 pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"])
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # the finished model now lives in models/conv_faces
    return config
