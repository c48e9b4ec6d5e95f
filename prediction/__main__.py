"""`python -m prediction` / `seqscale-predict`: logging, then run()."""

import sys
import traceback

from contract.logs import configure, level_from_argv
from preprocessing.errors import user_message


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    level = level_from_argv(argv)
    configure(level)
    from prediction.cli import run

    try:
        run(argv)
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        if level == "debug":
            traceback.print_exc()
        print(f"seqscale-predict: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
