"""Checks of settings read from a TOML or JSON table (the experiment specs' edge).

Each check is made by a factory (``integer(1)``, ``number(strict=True)``, ...) and called as
``check(where, value)``, where ``where`` names the setting (``"table.key"``); it returns the
value to keep (floats as ``float``, lists as tuples) or raises
:class:`~hnnkit.errors.HnnkitValueError` with a one-line message. ``optional=True`` lets
``None`` through.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import HnnkitValueError

Check = Callable[[str, Any], Any]


def check_keys(spec: str, data: Any, valid: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HnnkitValueError(f"{spec} must be a table of settings, got {type(data).__name__}")
    unknown = [k for k in data if k not in valid]
    if unknown:
        raise HnnkitValueError(
            f"unknown key(s) {', '.join(map(repr, unknown))} in {spec}; valid keys: "
            f"{', '.join(valid)}"
        )
    return data


def optional_check(check: Check) -> Check:
    return lambda where, value: None if value is None else check(where, value)


def integer(minimum: int, *, optional: bool = False) -> Check:
    def check(where: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise HnnkitValueError(
                f"{where} must be an integer, got {value!r} ({type(value).__name__})"
            )
        if value < minimum:
            raise HnnkitValueError(f"{where} must be >= {minimum}, got {value}")
        return value

    return optional_check(check) if optional else check


def number(
    *, low: float = 0.0, strict: bool = False, high: float | None = None, optional: bool = False
) -> Check:
    def check(where: str, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HnnkitValueError(
                f"{where} must be a number, got {value!r} ({type(value).__name__})"
            )
        value = float(value)
        ok = math.isfinite(value) and (value > low if strict else value >= low)
        if ok and high is not None:
            ok = value < high
        if not ok:
            bound = f"{'>' if strict else '>='} {low:g}" + (f" and < {high:g}" if high else "")
            raise HnnkitValueError(f"{where} must be a finite number {bound}, got {value}")
        return value

    return optional_check(check) if optional else check


def string(choices: tuple[str, ...] | None = None, *, optional: bool = False) -> Check:
    def check(where: str, value: Any) -> str:
        if not isinstance(value, str) or not value:
            raise HnnkitValueError(f"{where} must be a non-empty string, got {value!r}")
        if choices is not None and value not in choices:
            raise HnnkitValueError(
                f"{where} = {value!r} is not valid; choose one of: {', '.join(choices)}"
            )
        return value

    return optional_check(check) if optional else check


def span_check(where: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise HnnkitValueError(f"{where} must be [start, end], got {value!r}")
    start, end = (number(low=-math.inf)(where, v) for v in value)
    if not end > start:
        raise HnnkitValueError(f"{where} needs end > start, got {list(value)}")
    return (start, end)


span = optional_check(span_check)


def plain(where: str, value: Any) -> Any:
    """A TOML/JSON scalar or list of scalars (the values a system or model parameter takes)."""
    if isinstance(value, list | tuple):
        return tuple(plain(where, v) for v in value)
    if isinstance(value, bool | int | str) or value is None:
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise HnnkitValueError(
        f"{where} must be a number, string, boolean or a list of them, got {value!r}"
    )


def apply_checks(spec: Any, table: str, **checks: Check) -> None:
    """Check each named field of the frozen ``spec`` and keep the normalised value."""
    for key, check in checks.items():
        object.__setattr__(spec, key, check(f"{table}.{key}", getattr(spec, key)))
