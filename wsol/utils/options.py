"""One declaration per option: the schema every front end derives its checks from.

An option is a dataclass field made with :func:`option`: its type (from the annotation),
default, rule (``min``/``max`` with open ends, ``finite``, ``choices`` as a tuple, a
callable or a registry, a ``pattern``), help line and whether it can change a run's
results (``result``; a suite's cache key hashes only those). From that one declaration:

- the CLI: :func:`add_arguments` makes the argparse option (``type=`` parses and checks,
  the help line gets the default), :func:`values_from_args` reads it back;
- the Python API: :func:`check_options` checks a config's values (strict types: a bool is
  not an int, a string is not a number);
- a suite YAML: :meth:`Option.coerce` turns a YAML value (or a ``${VAR}`` string) into the
  option's type, then checks it the same way;
- the cache key: :func:`result_fields`.

Every refusal is one line, the same from the three front ends::

    pointing_tolerance must be a number >= 0, got nan

(the CLI prefixes ``argument --pointing-tolerance:``, a suite ``FILE:LINE:``). Adding an
option is adding one field; see CONTRIBUTING.md, "Adding an option".
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import numbers
import re
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from wsol.errors import WsolError
from wsol.utils.numbers import parse_number

Choices = Union[None, Sequence[str], Callable[[], Sequence[str]], Any]  # a tuple, a callable or a Registry
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_NONE = ("null", "none", "~")
_KINDS = ("int", "float", "str", "bool", "dict", "tuple")


class OptionError(WsolError, argparse.ArgumentTypeError):
    """A value an option refuses (one line naming the option, its rule and the value)."""


@dataclasses.dataclass(frozen=True)
class Option:
    """One option's declaration (see the module docstring); ``name``/``kind``/``default`` are
    filled from the dataclass field by :func:`options_of`."""

    help: str
    name: str = ""
    kind: str = ""                       # int | float | str | bool | dict | tuple
    default: Any = None
    optional: bool = False               # None is a valid value
    min: Optional[float] = None
    max: Optional[float] = None
    min_open: bool = False               # min itself refused
    max_open: bool = False               # max itself refused
    finite: bool = True                  # floats: NaN and infinities refused
    choices: Choices = None
    pattern: Optional[str] = None        # strings: a full-match regex ...
    pattern_rule: str = ""               # ... and how it reads in a message
    result: bool = True                  # can change a run's numbers (hashed by suites)
    flag: str = ""                       # CLI flag (default --name-with-dashes)
    metavar: Optional[str] = None
    cli: bool = True                     # an argparse option is derived
    note: str = ""                       # where a bound comes from, shown after the rule

    # ------------------------------------------------------------------ the rule
    def flag_name(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def choice_names(self) -> Optional[Tuple[str, ...]]:
        """The valid names (a registry's or a callable's are read when asked)."""
        c = self.choices
        if c is None:
            return None
        if hasattr(c, "names"):  # a wsol.utils.registry.Registry: registration order
            return tuple(c.names(sort=False))
        if callable(c):
            return tuple(c())
        return tuple(c)

    def _range(self) -> str:
        lo, hi = self.min, self.max
        fmt = (lambda v: str(int(v))) if self.kind == "int" else (lambda v: f"{v:g}")
        if lo is not None and hi is not None:
            if self.kind == "int":
                return f"in {fmt(lo)}..{fmt(hi)}"
            return f"in {'(' if self.min_open else '['}{fmt(lo)}, {fmt(hi)}{')' if self.max_open else ']'}"
        if lo is not None:
            return f"{'>' if self.min_open else '>='} {fmt(lo)}"
        if hi is not None:
            return f"{'<' if self.max_open else '<='} {fmt(hi)}"
        return "(finite)" if self.kind == "float" and self.finite else ""

    def rule(self) -> str:
        """How the valid values read: 'an integer >= 1', 'a number in (0, 1)', 'one of a, b'."""
        names = self.choice_names()
        if names is not None:
            return "one of " + ", ".join(names)
        if self.pattern_rule:
            return self.pattern_rule
        what = {"int": "an integer", "float": "a number", "bool": "true or false", "dict": "a mapping",
                "tuple": "a list"}.get(self.kind, "a string")
        out = f"{what} {self._range()}".strip()
        return f"{out} ({self.note})" if self.note else out

    def fail(self, value: Any) -> OptionError:
        shown = repr(value) if isinstance(value, str) else str(value)
        return OptionError(f"{self.name} must be {self.rule()}, got {shown}")

    # ------------------------------------------------------------------ checks
    def _type_ok(self, value: Any) -> bool:
        if self.kind == "int":
            return isinstance(value, numbers.Integral) and not isinstance(value, bool)
        if self.kind == "float":
            return isinstance(value, numbers.Real) and not isinstance(value, bool)
        if self.kind == "bool":
            return isinstance(value, bool) or type(value).__name__ == "bool_"
        if self.kind == "str":
            return isinstance(value, str)
        if self.kind == "dict":
            return isinstance(value, Mapping)
        return isinstance(value, (list, tuple))

    def _in_range(self, v: float) -> bool:
        if self.kind == "float" and self.finite and not math.isfinite(v):
            return False
        if self.min is not None and (v < self.min or (self.min_open and v == self.min)):
            return False
        return not (self.max is not None and (v > self.max or (self.max_open and v == self.max)))

    def check(self, value: Any) -> Any:
        """``value`` if it obeys the rule (an API value: strict types), else OptionError."""
        if value is None and self.optional:
            return None
        if not self._type_ok(value):
            raise self.fail(value)
        if self.kind in ("int", "float") and not self._in_range(float(value) if self.kind == "float" else value):
            raise self.fail(value)
        names = self.choice_names()
        if names is not None and value not in names:
            raise self.fail(value)
        if self.pattern and not re.fullmatch(self.pattern, value):
            raise self.fail(value)
        return value

    def parse(self, text: str) -> Any:
        """A command-line (or environment) string -> the checked value."""
        if self.optional and text.strip().lower() in _NONE:
            return None
        try:
            if self.kind == "int":  # plain numbers: no '1_0' (Python's int reads 10), no non-ASCII digits
                value: Any = parse_number(text, int)
            elif self.kind == "float":
                value = parse_number(text, float)
            elif self.kind == "bool":
                low = text.strip().lower()
                if low not in _TRUE + _FALSE:
                    raise ValueError(text)
                value = low in _TRUE
            else:
                value = text.strip() if (self.pattern or self.choices is not None) else text
        except (TypeError, ValueError, OverflowError):
            raise self.fail(text) from None
        return self.check(value)

    def coerce(self, value: Any) -> Any:
        """A suite YAML value (strings from ``${VAR}`` included) -> the checked value."""
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            if self.kind == "bool":
                return False
            if self.optional:
                return None
            raise self.fail(value)
        if isinstance(value, str) and self.kind != "str":
            return self.parse(value)
        if self.kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif self.kind == "float" and isinstance(value, numbers.Integral) and not isinstance(value, bool):
            value = float(value)
        elif self.kind == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        return self.check(value)


def option(default: Any = dataclasses.MISSING, *, help: str, default_factory: Any = dataclasses.MISSING,
           **rule: Any) -> Any:
    """A dataclass field declaring an option (``rule``: the :class:`Option` fields)."""
    spec = Option(help=help, **rule)
    kw: Dict[str, Any] = {"metadata": {"option": spec, "result": spec.result}}
    if default_factory is not dataclasses.MISSING:
        kw["default_factory"] = default_factory
    else:
        kw["default"] = default
    return dataclasses.field(**kw)


def _kind_of(annotation: Any) -> Tuple[str, bool]:
    """(kind, optional) of a field's annotation (a string under postponed annotations)."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    optional = text.startswith("Optional[")
    base = text[len("Optional["):-1] if optional else text
    base = base.split("[")[0].lower()
    kind = {"dict": "dict", "mapping": "dict", "tuple": "tuple", "list": "tuple"}.get(base, base)
    if kind not in _KINDS:
        raise TypeError(f"option type {text!r} is not one of {', '.join(_KINDS)}")
    return kind, optional


def options_of(cls: Any) -> Dict[str, Option]:
    """The declared options of a dataclass (class or instance), in field order."""
    out: Dict[str, Option] = {}
    for f in dataclasses.fields(cls):
        spec = f.metadata.get("option")
        if spec is None:
            continue
        kind, optional = _kind_of(f.type)
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None)  # type: ignore[misc]
        out[f.name] = dataclasses.replace(spec, name=f.name, kind=spec.kind or kind,
                                          optional=spec.optional or optional, default=default)
    return out


def check_options(cfg: Any, names: Optional[Iterable[str]] = None) -> None:
    """Check every declared option of the dataclass instance ``cfg`` (or those in ``names``)."""
    opts = options_of(cfg)
    for name in names if names is not None else opts:
        opts[name].check(getattr(cfg, name))


def result_fields(cls: Any) -> List[str]:
    """The fields that can change a run's outputs (what a suite's cache key hashes)."""
    return [f.name for f in dataclasses.fields(cls) if f.metadata.get("result", True)]


# ---------------------------------------------------------------------- argparse
def _help(opt: Option, default: Any) -> str:
    if "default" in opt.help or default is None or default is False or default == "" or opt.kind == "dict":
        return opt.help.replace("%", "%%")
    return f"{opt.help} (default {default})".replace("%", "%%")


def add_arguments(parser: Any, cls: Any, names: Sequence[str], defaults: Optional[Mapping[str, Any]] = None,
                  required: Sequence[str] = (), helps: Optional[Mapping[str, str]] = None) -> None:
    """Add the argparse options of ``names`` (declared on ``cls``) to ``parser`` (or a group);
    ``defaults`` overrides a command's defaults (and ``helps`` its wording of them),
    ``required`` options have none."""
    opts = options_of(cls)
    for name in names:
        opt = opts[name]
        if helps and name in helps:
            opt = dataclasses.replace(opt, help=helps[name])
        default = (defaults or {}).get(name, opt.default)
        kw: Dict[str, Any] = {"dest": name}
        if name in required:
            kw["required"] = True
        else:
            kw["default"] = default
        if opt.kind == "bool":
            parser.add_argument(opt.flag_name(), action="store_true", help=_help(opt, None), **kw)
            continue
        names_ = opt.choice_names()
        metavar = opt.metavar or ("{" + ",".join(names_) + "}" if names_ is not None else None)
        parser.add_argument(opt.flag_name(), type=parser_of(opt), metavar=metavar,
                            help=_help(opt, None if name in required else default), **kw)


def parser_of(opt: Option) -> Callable[[str], Any]:
    """``opt.parse`` with a name argparse can show (an argparse ``type=``)."""
    def parse(text: str) -> Any:
        return opt.parse(text)

    parse.__name__ = opt.name
    return parse


def values_from_args(args: argparse.Namespace, cls: Any) -> Dict[str, Any]:
    """The declared options of ``cls`` that ``args`` holds (by field name)."""
    return {k: getattr(args, k) for k in options_of(cls) if hasattr(args, k)}
