"""DVC stages train_shapes@<beta> and train_shapes_ae: `python pipeline/train_shapes.py <beta>|ae [--resume|--restart]`.

params.yaml `shapes.train` + data/shapes.npz -> models/shapes/beta<beta>/ (or models/shapes/ae/) and
reports/curves/shapes_<name>.csv, one MLflow run in experiment shapes-beta. A rerun after an
interruption continues from the last epoch's checkpoint.
"""

import argparse

from vaelab.cli import run_stage
from vaelab.shapes_train import train_shapes_model

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("beta", help="a value of shapes.betas, or 'ae' for the plain autoencoder")
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--resume", dest="resume", action="store_const", const="always",
                  help="require a checkpoint of this configuration and continue it")
mode.add_argument("--restart", dest="resume", action="store_const", const="never",
                  help="discard any checkpoint and train from scratch")
parser.set_defaults(resume="auto")

if __name__ == "__main__":
    args = parser.parse_args()
    run_stage(lambda params: train_shapes_model(args.beta, params, args.resume))
