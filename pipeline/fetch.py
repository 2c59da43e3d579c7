"""DVC stage fetch@<dataset>: `python pipeline/fetch.py <dataset>`.

params.yaml datasets.<dataset> -> data/<dataset>.npz (uint8 images + labels, attributes or factors).
"""

from vaelab import datasets
from vaelab.cli import name_parser, run_stage
from vaelab.config import dataset_config


def fetch(params: dict, name: str) -> None:
    datasets.fetch(dataset_config(params, name))  # prints what it wrote and from where


if __name__ == "__main__":
    run_stage(fetch, name_parser(__doc__, "a dataset of params.yaml datasets").parse_args().name)
