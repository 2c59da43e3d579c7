"""DVC stages sample_quality and beta_study: `python pipeline/compare.py <comparison>`.

Several runs' models and evaluations -> one comparison's JSON, figures (and, for the beta study,
reports/theory.md).
"""

from vaelab import compare
from vaelab.cli import name_parser, run_stage

COMPARISONS = {"sample_quality": compare.sample_quality, "beta_study": compare.beta_study}

if __name__ == "__main__":
    parser = name_parser(__doc__, "a comparison of params.yaml compare")
    name = parser.parse_args().name
    if name not in COMPARISONS:
        parser.error(f"unknown comparison {name!r}; choose one of {', '.join(COMPARISONS)}")
    run_stage(COMPARISONS[name])
