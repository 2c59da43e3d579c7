"""The value types of params.yaml (a count, a finite number, a non-empty list, ...), and pydantic's
first error as one line that names the dotted key and the fix."""

import math
from typing import Annotated, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from .errors import VaelabError


def fail(key: str, problem: str) -> None:
    raise VaelabError(
        f"params.yaml: {key} {problem}; fix it in params.yaml (or dvc exp run -S {key}=...)"
    )


def rule(ok, problem: str, before: bool = False):
    """A check beyond the type: `problem` (with the value for {}) where ok(value) is false."""

    def check(value):
        if not ok(value):
            raise PydanticCustomError("vaelab", problem.replace("{}", repr(value)))
        return value

    return (BeforeValidator if before else AfterValidator)(check)


def _finite_if_number(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError, OverflowError):
        return True  # not a number at all: pydantic says so


# YAML 1.1 reads "1e-3" as a string, so numbers are converted (pydantic's lax mode: an int also
# takes 2.0, not 2.5), not only type-checked; but YAML's true is no number, nor are NaN and inf.
NOT_BOOL = rule(lambda v: not isinstance(v, bool), "must be a number, got {}", before=True)
FINITE = rule(_finite_if_number, "must be a finite number, got {}", before=True)


def count(low: int):
    """An integer >= low."""
    return Annotated[int, NOT_BOOL, FINITE, Field(ge=low)]


def number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None):
    """A finite number, > gt or >= ge (and < lt)."""
    return Annotated[float, NOT_BOOL, FINITE, Field(gt=gt, ge=ge, lt=lt)]


T = TypeVar("T")
Listing = Annotated[list[T], Field(min_length=1)]  # a non-empty list
# a key that may be left out, and is then left out of the checked params too
Omittable = Annotated[T | None, Field(default=None, exclude_if=lambda value: value is None)]
Name = Annotated[str, Field(strict=True, min_length=1)]
Fraction = number(ge=0, lt=1)

DISCRIMINATORS = ("objective", "arch", "source")
PROBLEMS = {
    "vaelab": "{msg}",  # a rule's own words
    **dict.fromkeys(("missing", "union_tag_not_found"), "is missing"),
    **dict.fromkeys(("int_from_float", "int_parsing", "int_type"), "must be an integer, got {!r}"),
    **dict.fromkeys(("float_parsing", "float_type"), "must be a number, got {!r}"),
    "greater_than": "must be > {gt:g}, got {!r}",
    "greater_than_equal": "must be >= {ge:g}, got {!r}",
    "less_than": "must be < {lt:g}, got {!r}",
    **dict.fromkeys(("too_short", "list_type"), "must be a non-empty list, got {!r}"),
    **dict.fromkeys(("string_type", "string_too_short"), "must be a non-empty string, got {!r}"),
    **dict.fromkeys(("bool_type", "bool_parsing"), "must be true or false, got {!r}"),
    "literal_error": "must be one of {expected}, got {!r}",
    "union_tag_invalid": "must be one of {expected_tags}, got {tag!r}",
    **dict.fromkeys(
        ("model_type", "model_attributes_type", "dict_type"), "must be a mapping, got {!r}"
    ),
    "extra_forbidden": "is not a key of {what}; remove or rename it",
}


def validated(schema, value, where: str = ""):
    """`value` checked against `schema` (a model or a type); the first error, as a VaelabError."""
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as e:
        error = e.errors(include_url=False)[0]
    parts, parent, node, tag_passed = [where] if where else [], None, value, False
    for part in error["loc"]:
        if part == "[key]":  # the error is in the name itself
            continue
        # pydantic names the member of a discriminated union by its tag (the entry's objective,
        # arch or source) right after the entry: no key of the file.
        if not tag_passed and isinstance(node, dict) and part in map(node.get, DISCRIMINATORS):
            tag_passed = True
            continue
        parent, tag_passed = node, False
        node = node.get(part) if isinstance(node, dict) else None  # no list holds a section
        parts.append(f"[{part}]" if isinstance(part, int) else part)
    if error["type"].startswith("union_tag"):  # the tag itself is wrong or missing
        parts.append(error["ctx"]["discriminator"].strip("'"))
    key = ".".join(parts).replace(".[", "[")
    fail(key or "params.yaml", problem_words(error, parent, ".".join(parts[:-1]) or "params.yaml"))


def problem_words(error: dict, section, where: str) -> str:
    """What is wrong, in params.yaml's words: "'a', 'b' or 'c'" reads "a, b, c"."""
    kind, got = error["type"], error.get("input")
    if kind.endswith("_type") and got is None:  # an empty key in YAML
        return "is missing"
    context = {
        key: value.replace(" or ", ", ").replace("'", "") if isinstance(value, str) else value
        for key, value in error.get("ctx", {}).items()
    }
    problem = PROBLEMS.get(kind, "is invalid: {msg}")
    return problem.format(got, **context, msg=error["msg"], what=section_words(section, where))


def section_words(section, where: str) -> str:
    """The section a refused key is in: a run, a conv model, ..., or its dotted key."""
    if isinstance(section, dict):
        if "objective" in section:
            return "a run"
        for key, noun in (("arch", "model"), ("source", "dataset"), ("kind", "likelihood")):
            if key in section:
                return f"a {section[key]} {noun}"
    return where
