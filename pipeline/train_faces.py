"""DVC stage train_faces: `python pipeline/train_faces.py [--resume|--restart]`.

params.yaml `conv_faces` + data/faces.npz -> models/conv_faces/ and reports/curves/conv_faces.csv,
logged to MLflow experiment `celeba-vae`. A rerun after an interruption continues from the last
epoch's checkpoint.
"""

import argparse

from vaelab.cli import run_stage
from vaelab.faces_training import run_faces_training

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--resume", dest="resume", action="store_const", const="always",
                  help="require a checkpoint of this configuration and continue it")
mode.add_argument("--restart", dest="resume", action="store_const", const="never",
                  help="discard any checkpoint and train from scratch")
parser.set_defaults(resume="auto")

if __name__ == "__main__":
    args = parser.parse_args()
    run_stage(lambda params: run_faces_training(params, args.resume))
