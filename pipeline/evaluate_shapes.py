"""DVC stage evaluate_shapes@<beta>: `python pipeline/evaluate_shapes.py <beta>`.

models/shapes/beta<beta>/ + data/shapes.npz -> reports/shapes/beta<beta>.json (MIG, DCI, KL per dim,
...) and reports/figures/traversals_shapes_beta<beta>.png.
"""

import argparse

from vaelab.cli import run_stage
from vaelab.shapes_evaluate import run_shapes_evaluation

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("beta", help="a value of shapes.betas")

if __name__ == "__main__":
    args = parser.parse_args()
    run_stage(lambda params: run_shapes_evaluation(args.beta, params))
