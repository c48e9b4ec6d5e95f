"""What the three CLIs share: defaults shown from the config dataclasses, and the flag reference.

Defaults live once, in the config dataclasses (`JobConfig`, `DataConfig`, ...); the
argument parsers keep `None` as their own default (so a config file can fill what a flag
did not set) and show the dataclass default in `--help` through `show_defaults`.
`reference` renders a parser as the Markdown table in docs/flags.md, which a test
regenerates, so the documentation cannot drift from the parsers.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import difflib
import types
import typing
from collections.abc import Iterable, Mapping


def closest_flag(arg: str, known: Iterable[str]) -> str | None:
    """The known flag closest to a mistyped one (`--look_back` -> `--look-back`), if any is close."""
    name = arg.split("=", 1)[0]
    spelled = name.replace("_", "-")
    known = list(known)
    if spelled in known:
        return spelled
    match = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return match[0] if match else None


def unknown_flags_message(unknown: list[str], known: Iterable[str], prog: str) -> str:
    """One sentence naming every unknown flag and the closest valid one."""
    known = list(known)
    parts = []
    for arg in (a for a in unknown if a.startswith("-")):
        best = closest_flag(arg, known)
        parts.append(f"{arg.split('=', 1)[0]}" + (f" (did you mean {best}?)" if best else ""))
    if not parts:
        return f"unexpected argument(s) {' '.join(unknown)}; see {prog} --help"
    return f"unknown option(s) {', '.join(parts)}; see {prog} --help"


class SuggestingParser(argparse.ArgumentParser):
    """argparse that refuses abbreviations and names the closest valid flag for a mistyped one."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """One line on stderr and exit 2 (no usage block: --help has it)."""
        self.exit(2, f"{self.prog}: error: {message}\n")

    def parse_args(self, args=None, namespace=None):
        parsed, unknown = self.parse_known_args(args, namespace)
        if unknown:
            known = [o for a in self._actions for o in a.option_strings]
            self.error(unknown_flags_message(unknown, known, self.prog))
        return parsed


def dataclass_defaults(*classes) -> dict[str, object]:
    """Field name -> default value of every field that has one."""
    out: dict[str, object] = {}
    for cls in classes:
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                out[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                out[f.name] = f.default_factory()
    return out


def _show(value: object) -> str | None:
    if value is None or value == "" or value == () or isinstance(value, bool):
        return None
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def show_defaults(parser: argparse.ArgumentParser, defaults: Mapping[str, object]) -> argparse.ArgumentParser:
    """Append "(default: X)" to the help of each option whose dataclass field has a default."""
    for action in parser._actions:
        shown = _show(defaults.get(action.dest))
        if shown is not None and action.help and action.default is None:
            action.help += f" (default: {shown})"
    return parser


def reference(parser: argparse.ArgumentParser) -> str:
    """A Markdown table of a parser's options: flag, help (with its default)."""
    lines = [f"### `{parser.prog}`", "", parser.description or "", "", "| flag | meaning |", "|---|---|"]
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        flags = ", ".join(f"`{o}`" for o in action.option_strings)
        if action.choices and not action.help.startswith(" | ".join(map(str, action.choices))):
            flags += " {" + ",".join(map(str, action.choices)) + "}"
        lines.append(f"| {flags} | {(action.help or '').replace('|', '&#124;')} |")
    return "\n".join(lines) + "\n"


def _type_name(tp) -> str:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in args if a is not type(None)) + " (or null)"
    if origin is tuple:
        return f"a list of {_type_name(args[0])}"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(tp, str(tp))


def _coerce(value, tp):
    """`value` as type `tp`, or raise TypeError. YAML reads 1e-3 as a string, so numbers in strings count."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        return _coerce(value, next(a for a in args if a is not type(None)))
    if origin is tuple:
        items = [s.strip() for s in value.split(",") if s.strip()] if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise TypeError
        return tuple(_coerce(v, args[0]) for v in items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "yes", "on", "1"):
            return True
        if text in ("false", "no", "off", "0"):
            return False
        raise TypeError
    if tp in (int, float):
        if isinstance(value, bool) or value is None:
            raise TypeError
        try:
            number = float(value) if isinstance(value, str) else value
        except ValueError:
            raise TypeError from None
        if tp is int:
            if float(number) != int(number):
                raise TypeError
            return int(number)
        return float(number)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float | datetime.date) and not isinstance(value, bool):
            return str(value)  # YAML turns 2021-02-01 into a date and 90 into an int
        raise TypeError
    return value


def coerce_fields(cls, values: Mapping[str, object], *, source: str, error: type[Exception] = ValueError,
                  choices: Mapping[str, Iterable] | None = None, prefix: str = "") -> dict[str, object]:
    """Check and convert config-file values to the dataclass's field types (and choices).

    Errors read `file: field: expected X, got 'Y'` and are raised as `error`, so a config
    mistake is a clean exit 2, never a TypeError traceback later.
    """
    hints = typing.get_type_hints(cls)
    out = {}
    for name, value in values.items():
        if name not in hints:
            out[name] = value  # unknown names are reported by the caller, with its own wording
            continue
        try:
            out[name] = _coerce(value, hints[name])
        except (TypeError, ValueError):
            raise error(f"{source}: {prefix}{name}: expected {_type_name(hints[name])}, got {value!r}") from None
        allowed = (choices or {}).get(name)
        if allowed is not None and out[name] is not None and out[name] not in tuple(allowed):
            raise error(f"{source}: {prefix}{name}: expected one of {', '.join(map(str, allowed))}, got {value!r}")
    return out
