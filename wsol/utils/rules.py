"""Value rules for options that reach the code from several doors (CLI flags, ``--*-option
KEY=VALUE``, suite YAML, the Python API): one declaration per option, one check, one message.

A :class:`Rule` is a type (strict: a bool is not an int, the string ``'false'`` is not a bool),
an optional range with open or closed ends (floats must be finite) and optional choices.
:meth:`Rule.check` takes a Python value as the API receives it; :meth:`Rule.coerce` first turns
text (a command line, an environment variable, a YAML string) into the type. The bounds are
sane upper limits derived from what a run would allocate (a ``cam_step`` of 1e-7 would be ten
million thresholds). Every refusal is one line::

    cam_step must be a number in [0.0001, 1) (at most 10,000 thresholds), got 1e-07

Options that are dataclass fields (EvalConfig, TrainConfig) are declared in the option
schema itself (:mod:`wsol.utils.options`); a :class:`Rule` is that schema's Option for the
rest (CAM method options, generator parameters), with the same checks and messages.
"""
from __future__ import annotations

import numbers
from dataclasses import replace
from typing import Any, Dict, Iterable, Mapping, Optional, Tuple

from wsol.errors import WsolError

#: the largest seed every RNG wsol seeds accepts (numpy's legacy seeding: below 2**32)
MAX_SEED = 2 ** 32 - 1


class Rule:
    """An option's rule for values that have no dataclass field to declare them on (a CAM
    method's ``option_rules``, a generator parameter): a :class:`wsol.utils.options.Option`
    named when it is used, so the check and the message are the schema's."""

    def __init__(self, kind: str, min: Optional[float] = None, max: Optional[float] = None,
                 min_open: bool = False, max_open: bool = False, choices: Optional[Tuple[Any, ...]] = None,
                 optional: bool = False, note: str = ""):
        from wsol.utils.options import Option

        self.kind = kind
        self.option = Option(help="", kind=kind, min=min, max=max, min_open=min_open, max_open=max_open,
                             choices=choices, optional=optional, note=note)

    def describe(self) -> str:
        return self.option.rule()

    def check(self, name: str, value: Any) -> Any:
        """``value`` when it obeys the rule (strict types), else a one-line WsolError."""
        return replace(self.option, name=name).check(value)

    def coerce(self, name: str, value: Any) -> Any:
        """Text (command line, environment, YAML) or a number -> the type, then :meth:`check`."""
        opt = replace(self.option, name=name)
        if isinstance(value, str) and self.kind != "str":
            return opt.parse(value)
        if self.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif self.kind == "float" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = float(value)
        return opt.check(value)


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
