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
import difflib
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
