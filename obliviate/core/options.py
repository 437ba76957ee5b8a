"""Options: one declaration per config field (default, help text, and the constraint its value must meet).

Every config dataclass in obliviate (methods, attacks, training, evaluation, the people generator) declares
its fields with :func:`option` and inherits :class:`Options`, so the same declaration

- coerces values given as text (``--set lr=5e-4``: YAML reads ``5e-4`` as a string) to the field's type,
- rejects values that contradict the option's meaning (``epochs=0``, ``beta=0``, ``batch_size=1.5``) with a
  one-line error naming the option, before any model is loaded,
- and documents the option (``obliviate ls npo`` prints the table).

    @dataclass
    class NPOConfig(GradientConfig):
        beta: float = option(0.1, "β, the inverse temperature of the NPO loss (paper: 0.1)", gt=0)
"""
from __future__ import annotations

import math
import types
import typing
from dataclasses import MISSING, field, fields
from typing import Any, Callable

from obliviate.core.utils import ObliviateError


class OptionError(ObliviateError):
    """A value that does not fit its option; ``detail`` names the option without the owner's prefix."""

    def __init__(self, detail: str, owner: str = ""):
        super().__init__(f"{owner}: {detail}" if owner else detail)
        self.detail = detail


def option(default: Any = MISSING, help: str = "", *, factory: Callable | None = None, gt=None, ge=None, lt=None,
           le=None, choices: tuple | None = None, check: Callable[[Any], str | None] | None = None):
    """A dataclass field with its help text and constraint. ``gt``/``ge``/``lt``/``le`` bound numbers,
    ``choices`` lists the allowed values, and ``check(value)`` returns a problem description (or None)
    for anything else (e.g. a comma-separated list). ``None`` always passes when the type admits it
    (it means "the default for this kind of model")."""
    meta = {"help": help, "gt": gt, "ge": ge, "lt": lt, "le": le, "choices": choices, "check": check}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def comma_list(kind: type = str, *, ge=None, le=None, gt=None, choices: tuple | None = None, nonempty: bool = True):
    """A ``check`` for options that hold a comma-separated list (``bits="8,4"``, ``steps="0,10,25,50"``)."""
    def check(value: str) -> str | None:
        parts = [p.strip() for p in str(value).split(",") if p.strip()]
        if nonempty and not parts:
            return "a non-empty comma-separated list"
        for p in parts:
            if kind is float:
                try:
                    x = float(p)
                except ValueError:
                    return f"a comma-separated list of numbers ({p!r} is not one)"
                if not math.isfinite(x) or (gt is not None and not x > gt):
                    return f"a comma-separated list of numbers > {gt} ({p} is not)"
            elif kind is int:
                try:
                    x = int(p)
                except ValueError:
                    return f"a comma-separated list of integers ({p!r} is not one)"
                if (ge is not None and x < ge) or (le is not None and x > le):
                    bounds = " and ".join(f"{op} {b}" for op, b in ((">=", ge), ("<=", le)) if b is not None)
                    return f"a comma-separated list of integers {bounds} ({p} is not)"
            elif choices is not None and p not in choices:
                return f"a comma-separated list drawn from {', '.join(choices)} ({p!r} is not one)"
        return None
    return check


class Options:
    """Base of every config dataclass: coerces and checks every field on construction (see :func:`option`).
    A subclass may define ``check(self)`` for rules that involve several fields."""

    def __post_init__(self):
        validate(self)

    def check(self) -> None:  # cross-field rules; overridden where needed
        return None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _describe(meta: dict, tp: Any) -> str:
    """What a value must be, in words ("a number > 0", "an integer >= 1", "one of 'nll', 'kl'")."""
    if meta.get("choices"):
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    base = {int: "an integer", float: "a number", bool: "true or false", str: "text", dict: "a mapping",
            list: "a list"}.get(_inner(tp), "a value")
    bounds = [f"{op} {meta[k]}" for k, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<="))
              if meta.get(k) is not None]
    return base + (" " + " and ".join(bounds) if bounds else "")


def _inner(tp: Any) -> Any:
    """``X`` for ``X | None`` / ``Optional[X]``; ``tp`` otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return args[0] if len(args) == 1 else tp
    return typing.get_origin(tp) or tp


def _optional(tp: Any) -> bool:
    return typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in typing.get_args(tp)


def coerce(tp: Any, value: Any, what: str) -> Any:
    """``value`` as type ``tp``; text is parsed (numbers, booleans, YAML mappings). Raises :class:`OptionError`."""
    if value is None:
        if _optional(tp):
            return None
        raise OptionError(f"{what}: a value is required")
    kind = _inner(tp)
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no"):
            return value.strip().lower() in ("true", "yes")
        raise OptionError(f"{what}={value!r}: expected true or false")
    if kind is int:
        if isinstance(value, bool):
            raise OptionError(f"{what}={value!r}: expected an integer")
        if isinstance(value, int):
            return value
        x = _number(value)
        if x is None or not x.is_integer():
            raise OptionError(f"{what}={value!r}: expected an integer")
        return int(x)
    if kind is float:
        if isinstance(value, bool):
            raise OptionError(f"{what}={value!r}: expected a number")
        x = _number(value)
        if x is None:
            raise OptionError(f"{what}={value!r}: expected a number")
        if not math.isfinite(x):
            raise OptionError(f"{what}={value!r}: expected a finite number")
        return x
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):  # steps=10, bits=4
            return str(value)
        raise OptionError(f"{what}={value!r}: expected text")
    if kind in (dict, list):
        if isinstance(value, str):
            import yaml

            try:
                value = yaml.safe_load(value) if value.strip() else {} if kind is dict else []
            except yaml.YAMLError:
                raise OptionError(f"{what}={value!r}: expected a YAML {'mapping' if kind is dict else 'list'}") from None
        if not isinstance(value, kind):
            raise OptionError(f"{what}={value!r}: expected a {'mapping' if kind is dict else 'list'}")
        return value
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def check_value(meta: dict, tp: Any, value: Any, what: str) -> None:
    """Raise :class:`OptionError` if ``value`` (already coerced) breaks the option's constraint."""
    if value is None:
        return
    bad = False
    for key, fails in (("gt", lambda v, b: not v > b), ("ge", lambda v, b: not v >= b),
                       ("lt", lambda v, b: not v < b), ("le", lambda v, b: not v <= b)):
        if meta.get(key) is not None and fails(value, meta[key]):
            bad = True
    if meta.get("choices") and value not in meta["choices"]:
        bad = True
    if bad:
        raise OptionError(f"{what}={value!r}: must be {_describe(meta, tp)}")
    if meta.get("check"):
        problem = meta["check"](value)
        if problem:
            raise OptionError(f"{what}={value!r}: must be {problem}")


def validate(obj) -> None:
    """Coerce and check every field of the dataclass instance ``obj`` in place, then its ``check()``."""
    hints = _hints(type(obj))
    for f in fields(obj):
        tp = hints.get(f.name, Any)
        try:
            value = coerce(tp, getattr(obj, f.name), f.name)
            check_value(dict(f.metadata), tp, value, f.name)
        except OptionError as e:
            raise OptionError(e.detail, type(obj).__name__) from None
        object.__setattr__(obj, f.name, value)
    try:
        obj.check()
    except OptionError as e:
        raise OptionError(e.detail, type(obj).__name__) from None


def from_dict(cls: type, d: dict | None, owner: str = ""):
    """Build the config ``cls`` from overrides (values may be text); unknown keys and bad values are an error
    naming the option and ``owner`` (e.g. ``"method npo"``)."""
    d = dict(d or {})
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(d) - set(names))
    prefix = owner or cls.__name__
    if unknown:
        raise ObliviateError(f"{prefix}: unknown option(s) {', '.join(map(str, unknown))}; "
                             f"expected some of {', '.join(sorted(names))}")
    try:
        return cls(**d)
    except OptionError as e:
        raise OptionError(e.detail, prefix) from None


def describe(cls: type) -> list[dict]:
    """One row per option: name, type, default, constraint and help (for ``obliviate ls <method>``)."""
    hints = _hints(cls)
    rows = []
    for f in fields(cls):
        meta = dict(f.metadata)
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING
                                                              else None)
        tp = hints.get(f.name, Any)
        rows.append({"name": f.name, "type": getattr(_inner(tp), "__name__", str(tp)), "default": default,
                     "constraint": _describe(meta, tp) if any(meta.get(k) is not None for k in
                                                              ("gt", "ge", "lt", "le", "choices")) else "",
                     "help": meta.get("help", "")})
    return rows


__all__ = ["OptionError", "Options", "comma_list", "describe", "from_dict", "option", "validate"]
