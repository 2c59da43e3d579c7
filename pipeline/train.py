"""DVC stages train_fc, train_conv, train_conv_beta5: `python pipeline/train.py <model> [--resume|--restart]`.

params.yaml section <model> + data/cifar10.npz -> models/<model>/ and reports/curves/<model>.csv,
logged to MLflow. A rerun after an interruption continues from the last epoch's checkpoint.
"""

import argparse

from vaelab.cli import run_stage
from vaelab.params import MODEL_NAMES
from vaelab.train import run_training

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("model", choices=MODEL_NAMES)
mode = parser.add_mutually_exclusive_group()
mode.add_argument("--resume", dest="resume", action="store_const", const="always",
                  help="require a checkpoint of this configuration and continue it")
mode.add_argument("--restart", dest="resume", action="store_const", const="never",
                  help="discard any checkpoint and train from scratch")
parser.set_defaults(resume="auto")

if __name__ == "__main__":
    args = parser.parse_args()
    run_stage(lambda params: run_training(args.model, params, args.resume))
