"""The prose of the generated reports, as Jinja2 templates (markdown, so nothing is escaped).

Python computes the numbers and which way each one moved; a template words them (counting,
sorting or indexing what it is given, never judging a number). `{{ x | fmt(".3g") }}` is
`f"{x:.3g}"`, so a template prints a number exactly as the f-strings it replaced did.
"""

from __future__ import annotations

from functools import cache

import jinja2

from ..sweep import CLEAR_CHANGE, CLEAR_SCORE, differs, direction, mean_pm


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("vaelab", "templates"),
        undefined=jinja2.StrictUndefined,  # a misspelt name fails instead of printing nothing
        keep_trailing_newline=True,
        trim_blocks=True,  # a line holding only a {% tag %} leaves no blank line behind
        lstrip_blocks=True,
        autoescape=False,  # markdown, not HTML
    )
    env.filters.update(
        fmt=lambda value, spec="": format(value, spec),
        pct=lambda value: f"{100 * value:.0f}%",  # 0.953 -> '95%'
        mean_pm=mean_pm,
    )
    env.globals.update(
        direction=direction, differs=differs, CLEAR_CHANGE=CLEAR_CHANGE, CLEAR_SCORE=CLEAR_SCORE
    )
    return env


def render(name: str, **values) -> str:
    """The template `name` of this folder filled with `values`."""
    return environment().get_template(name).render(**values)


def macro(template: str, name: str):
    """The macro `name` of `template` as a function returning its text."""
    return getattr(environment().get_template(template).module, name)
