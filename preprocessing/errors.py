"""Errors that name the file, row and column at fault and say what to do.

Beam runners re-raise worker exceptions wrapped in their own types and tracebacks,
so every seqscale error message starts with a fixed marker that the CLI finds in the
wrapped text and prints alone (see `user_message`).
"""

from __future__ import annotations

MARKER = "seqscale error: "


class SeqscaleError(ValueError):
    """Base class: the message is for the user, complete with the fix."""

    def __init__(self, message: str) -> None:
        # Beam re-raises a worker's exception as type(e)(its message + context), which
        # would prefix the marker again: keep exactly one.
        while message.startswith(MARKER):
            message = message[len(MARKER):]
        super().__init__(MARKER + message)


class SpecError(SeqscaleError):
    """The options or spec file are inconsistent."""


class InputError(SeqscaleError):
    """The input data violates the spec (names file, row/time and column)."""


class OutputError(SeqscaleError):
    """The output location cannot be used (exists, not writable)."""


def user_message(exc: BaseException) -> str | None:
    """The seqscale message inside a (possibly runner-wrapped) exception, or None."""
    text = str(exc)
    i = text.find(MARKER)
    if i < 0:
        cause = exc.__cause__ or exc.__context__
        return user_message(cause) if cause is not None else None
    line = text[i + len(MARKER):]
    while line.startswith(MARKER):
        line = line[len(MARKER):]
    # Runners append traceback text after the message; keep the message only.
    for stop in ("\nTraceback", " [while running", "\n\n"):
        j = line.find(stop)
        if j >= 0:
            line = line[:j]
    return _unwrap_quotes(line.strip())


def _unwrap_quotes(line: str) -> str:
    """Drop a quote the runner's repr left at either end, never one the message itself closes
    (`got 'forty-eight'` keeps its closing quote: the message's own quotes come in pairs)."""
    for q in ("'", '"'):
        if line.count(q) % 2 == 1:
            if line.endswith(q):
                line = line[:-1]
            elif line.startswith(q):
                line = line[1:]
    return line.strip()


def main_with_messages(prog: str, run, argv: list[str]) -> int:
    """A job's console entry: run it; a seqscale error (even wrapped by a runner) is one line on
    stderr and exit 2 (the traceback too with --log-level debug); anything else propagates."""
    import sys
    import traceback

    from contract.logs import configure, level_from_argv

    level = level_from_argv(argv)
    configure(level)
    try:
        run()(argv)
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        if level == "debug":
            traceback.print_exc()
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2
    return 0
