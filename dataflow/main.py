"""The Dataflow Flex Template's Python file (FLEX_TEMPLATE_PYTHON_PY_FILE in docker/beam.Dockerfile).

The launcher runs this with every template parameter as `--name=value`; the translation to
seqscale's flags lives in preprocessing/flex_template.py, which the image has installed.
"""

import sys

from preprocessing.flex_template import main

if __name__ == "__main__":
    sys.exit(main())
