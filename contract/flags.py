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
from collections.abc import Mapping


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
