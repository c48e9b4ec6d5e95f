"""`python -m prediction` / `seqscale-predict`: logging, then run()."""

import sys

from preprocessing.errors import main_with_messages


def _run():
    from prediction.cli import run  # after logging is configured: Beam logs at import

    return run


def main(argv: list[str] | None = None) -> int:
    return main_with_messages("seqscale-predict", _run, list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
