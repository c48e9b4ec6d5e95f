"""`python -m preprocessing` / `seqscale-preprocess`: logging, then run()."""

import logging
import sys

from preprocessing.errors import user_message


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from preprocessing.cli import run

    try:
        run(argv)
    except Exception as e:
        msg = user_message(e)
        if msg is None:
            raise
        print(f"seqscale-preprocess: error: {msg}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
