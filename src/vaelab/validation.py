"""The value types of params.yaml (a count, a finite number, a non-empty list, ...), and pydantic's
first error as one line that names the dotted key and the fix."""

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


# YAML 1.1 reads "1e-3" as a string, so numbers are converted (pydantic's lax mode: an int also
# takes 2.0, not 2.5), not only type-checked; but YAML's true is no number, nor are NaN and inf
# (pydantic refuses both as an int; allow_inf_nan=False as a float).
NOT_BOOL = rule(lambda v: not isinstance(v, bool), "must be a number, got {}", before=True)


def count(low: int):
    """An integer >= low."""
    return Annotated[int, NOT_BOOL, Field(ge=low)]


def number(*, gt: float | None = None, ge: float | None = None, lt: float | None = None):
    """A finite number, > gt or >= ge (and < lt)."""
    return Annotated[float, NOT_BOOL, Field(gt=gt, ge=ge, lt=lt, allow_inf_nan=False)]


T = TypeVar("T")
Listing = Annotated[list[T], Field(min_length=1)]  # a non-empty list
# a key that may be left out, and is then left out of the checked params too
Omittable = Annotated[T | None, Field(default=None, exclude_if=lambda value: value is None)]
Name = Annotated[str, Field(strict=True, min_length=1)]
Fraction = number(ge=0, lt=1)

DISCRIMINATORS = ("objective", "arch", "source")


def validated(schema, value, where: str = ""):
    """`value` checked against `schema` (a model or a type); the first error, as a VaelabError in
    pydantic's words, but for a missing or unknown key (the typos that matter most)."""
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as e:
        error = e.errors(include_url=False)[0]
    parts, node, tag_passed = [where] if where else [], value, False
    for part in error["loc"]:
        if part == "[key]":  # the error is in the name itself
            continue
        # pydantic names the member of a discriminated union by its tag (the entry's objective,
        # arch or source) right after the entry: no key of the file.
        if not tag_passed and isinstance(node, dict) and part in map(node.get, DISCRIMINATORS):
            tag_passed = True
            continue
        tag_passed = False
        node = node.get(part) if isinstance(node, dict) else None  # no list holds a section
        parts.append(f"[{part}]" if isinstance(part, int) else part)
    if error["type"].startswith("union_tag"):  # the tag itself is wrong or missing
        parts.append(error["ctx"]["discriminator"].strip("'"))
    key = ".".join(parts).replace(".[", "[")
    kind, got = error["type"], error.get("input")
    if kind in ("missing", "union_tag_not_found") or (kind.endswith("_type") and got is None):
        problem = "is missing"  # None: an empty key in YAML
    elif kind == "extra_forbidden":
        section = ".".join(parts[:-1]).replace(".[", "[") or "params.yaml"
        problem = f"is not a key of {section}; remove or rename it"
    elif kind == "vaelab":  # a rule's own words
        problem = error["msg"]
    else:
        shown = "" if isinstance(got, dict) else f", got {got!r}"  # a union's tag names itself
        problem = f"is invalid ({error['msg']}{shown})"
    fail(key or "params.yaml", problem)
