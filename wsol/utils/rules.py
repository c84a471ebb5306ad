"""Value rules for options that reach the code from several doors (CLI flags, ``--*-option
KEY=VALUE``, suite YAML, the Python API): one declaration per option, one check, one message.

A :class:`Rule` is a type (strict: a bool is not an int, the string ``'false'`` is not a bool),
an optional range with open or closed ends (floats must be finite) and optional choices.
:meth:`Rule.check` takes a Python value as the API receives it; :meth:`Rule.coerce` first turns
text (a command line, an environment variable, a YAML string) into the type. The bounds are
sane upper limits derived from what a run would allocate (a ``cam_step`` of 1e-7 would be ten
million thresholds). Every refusal is one line::

    cam_step must be a number in [0.0001, 1) (at most 10,000 thresholds), got 1e-07

(This vocabulary is a subset of the option schema's, :mod:`wsol.utils.options`, so that
these rules can move into its declarations as they are.)
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from wsol.errors import WsolError

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
#: the largest seed every RNG wsol seeds accepts (numpy's legacy seeding: below 2**32)
MAX_SEED = 2 ** 32 - 1


@dataclass(frozen=True)
class Rule:
    """One option's rule: ``kind`` int | float | bool | str | dict; range; choices; ``note``
    says where a bound comes from."""

    kind: str
    min: Optional[float] = None
    max: Optional[float] = None
    min_open: bool = False
    max_open: bool = False
    choices: Optional[Tuple[Any, ...]] = None
    optional: bool = False
    note: str = ""

    def describe(self) -> str:
        """How valid values read: 'an integer in 0..4294967295', 'a number in (0, 1)'."""
        if self.choices is not None:
            return "one of " + ", ".join(str(c) for c in self.choices)
        what = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string",
                "dict": "a mapping"}[self.kind]
        fmt = (lambda v: f"{int(v)}") if self.kind == "int" else (lambda v: f"{v:g}")
        lo, hi = self.min, self.max
        if lo is not None and hi is not None:
            rng = f"in {fmt(lo)}..{fmt(hi)}" if self.kind == "int" else \
                f"in {'(' if self.min_open else '['}{fmt(lo)}, {fmt(hi)}{')' if self.max_open else ']'}"
        elif lo is not None:
            rng = f"{'>' if self.min_open else '>='} {fmt(lo)}"
        elif hi is not None:
            rng = f"{'<' if self.max_open else '<='} {fmt(hi)}"
        else:
            rng = "(finite)" if self.kind == "float" else ""
        out = f"{what} {rng}".strip()
        return f"{out} ({self.note})" if self.note else out

    def fail(self, name: str, value: Any) -> WsolError:
        return WsolError(f"{name} must be {self.describe()}, got {value!r}")

    def _type_ok(self, v: Any) -> bool:
        if self.kind == "int":
            return isinstance(v, numbers.Integral) and not isinstance(v, bool)
        if self.kind == "float":
            return isinstance(v, numbers.Real) and not isinstance(v, bool)
        if self.kind == "bool":
            return isinstance(v, bool) or type(v).__name__ == "bool_"
        if self.kind == "str":
            return isinstance(v, str)
        return isinstance(v, Mapping)

    def check(self, name: str, value: Any) -> Any:
        """``value`` when it obeys the rule (strict types), else a one-line WsolError."""
        if value is None and self.optional:
            return None
        if not self._type_ok(value):
            raise self.fail(name, value)
        if self.kind in ("int", "float"):
            v = float(value) if self.kind == "float" else value
            if self.kind == "float" and not math.isfinite(v):
                raise self.fail(name, value)
            if self.min is not None and (v < self.min or (self.min_open and v == self.min)):
                raise self.fail(name, value)
            if self.max is not None and (v > self.max or (self.max_open and v == self.max)):
                raise self.fail(name, value)
        if self.choices is not None and value not in self.choices:
            raise self.fail(name, value)
        return value

    def coerce(self, name: str, value: Any) -> Any:
        """Text (command line, environment, YAML) or a number -> the type, then :meth:`check`."""
        if isinstance(value, str):
            text = value.strip()
            if self.optional and text.lower() in ("none", "null", "~", ""):
                return None
            try:
                if self.kind == "int":
                    from wsol.utils.numbers import parse_number

                    value = parse_number(text, int)
                elif self.kind == "float":
                    from wsol.utils.numbers import parse_number

                    value = parse_number(text, float)
                elif self.kind == "bool":
                    if text.lower() not in _TRUE + _FALSE:
                        raise ValueError(text)
                    value = text.lower() in _TRUE
            except ValueError:
                raise self.fail(name, value) from None
        elif self.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif self.kind == "float" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = float(value)
        return self.check(name, value)


def check_keys(given: Iterable[str], valid: Iterable[str], what: str) -> None:
    """Refuse a key that is not in ``valid``, listing the valid ones (and the closest)."""
    import difflib

    valid = sorted(valid)
    for k in given:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise WsolError(f"{what} has no option '{k}'{hint} (valid: {', '.join(valid) or 'none'})")


def check_values(rules: Mapping[str, Rule], values: Mapping[str, Any], coerce: bool = False) -> Dict[str, Any]:
    """Each value with a rule checked (``coerce``: text accepted and converted); -> the values."""
    out = dict(values)
    for k, v in values.items():
        r = rules.get(k)
        if r is not None:
            out[k] = r.coerce(k, v) if coerce else r.check(k, v)
    return out
