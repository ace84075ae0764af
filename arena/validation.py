"""Validation with pydantic, in one place: the base model of every setting, and its errors in words.

Budget, architecture and every method's settings are pydantic models (no torch), so the CLI, the
Python API and the HTTP schema validate with the same code, and /openapi.json documents every field.
Strict: "5" is not a number and unknown keys are refused; the messages name the field, the limit and,
for a misspelt key, the closest valid one.
"""

from __future__ import annotations

import difflib
import re
import types
import typing

from pydantic import BaseModel, ConfigDict, ValidationError

from arena.errors import ArenaError


class Model(BaseModel):
    """Frozen, strict, no unknown keys."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def is_complete(info) -> bool:
    """In a validator: are these the final values (see `check`)?"""
    return bool((info.context or {}).get("complete"))


def did_you_mean(name, valid) -> str:
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _model_at(model: type[BaseModel] | None, location: tuple) -> type[BaseModel] | None:
    """The pydantic model that owns the last key of `location`, following nested fields from `model`."""
    for part in location[:-1]:
        if model is None or not isinstance(part, str) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        candidates = typing.get_args(annotation) if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union else (annotation,)
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
    return model


def describe(error: dict, model: type[BaseModel] | None = None, prefix: tuple = ()) -> str:
    """One pydantic error as a sentence: `ga.population_size: Input should be ...; got 20000`."""
    location = tuple(part for part in (*prefix, *error["loc"]))
    where = ".".join(str(part) for part in location) or "value"
    if error["type"] == "extra_forbidden":
        owner = _model_at(model, tuple(error["loc"]))
        valid = list(owner.model_fields) if owner is not None else []
        hint = did_you_mean(location[-1], valid) if valid else ""
        listing = f"; valid: {', '.join(valid)}" if valid else ""
        return f"unknown setting {where!r}{hint}{listing}"
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] in ("value_error", "assertion_error") or "input" not in error:
        return f"{where}: {message}"
    hint = ""
    if error["type"] == "literal_error":  # a misspelt choice: "adamw" -> did you mean 'adam'?
        hint = did_you_mean(error["input"], re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", ""))))
    return f"{where}: {message}; got {error['input']!r}{hint}"


def check(model: type[BaseModel], data, prefix: tuple = (), complete: bool = False):
    """`model.model_validate(data)`, or an ArenaError with the first problem in words and its location.

    `complete`: the data is final (the task's defaults merged in), so checks between fields run too;
    a request body's partial settings object cannot know the values its unset fields will take.
    """
    if isinstance(data, model) and not complete:
        return data
    if isinstance(data, model):
        data = data.model_dump()
    if complete and isinstance(data, dict):
        # Every field given, the model's own defaults too: checks between fields see the values a run uses
        # (pydantic does not validate a default it fills in).
        defaults = {name: field.get_default(call_default_factory=True) for name, field in model.model_fields.items() if not field.is_required()}
        data = {**defaults, **data}
    try:
        return model.model_validate(data, context={"complete": complete})
    except ValidationError as error:
        first = error.errors()[0]
        raise ArenaError(describe(first, model, prefix), location=(*prefix, *first["loc"])) from None
