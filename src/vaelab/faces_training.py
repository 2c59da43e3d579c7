"""The `train_faces` stage: the conv VAE on CelebA faces, as `conv_faces` in MLflow experiment `celeba-vae`.

The same loop, checkpoints, resume, curves and model files as the CIFAR-10 models (`train.fit`,
`train.checkpoint_dir`, `checkpoints.save_model`); only the data and the experiment differ. The
model's image size is taken from `faces.image_size`, the one place it is set.
"""

from __future__ import annotations

from pathlib import Path

from .errors import VaelabError
from .faces import load_faces
from .models import build_model
from .params import faces_section, training_section
from .train import train_and_log

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
    """The `train_faces` stage: conv_faces through the same training and logging as the CIFAR models."""
    from . import tracking

    faces, section = faces_section(params), faces_training_section(params)
    tracking.check_tracking_server()
    dataset = load_faces(Path(faces["path"]))
    if dataset["x_train"].shape[1] != faces["image_size"]:
        raise VaelabError(f"{faces['path']} holds {dataset['x_train'].shape[1]}-px faces but faces.image_size is "
                          f"{faces['image_size']}; rerun dvc repro fetch_faces")
    data_params = {k: faces[k] for k in ("image_size", "crop_fraction", "max_images", "test_count")}
    return train_and_log(FACES_MODEL, section, dataset, Path(faces["path"]), params, faces["experiment"],
                         data_params, resume, extras={"data_source": dataset["source"]})
