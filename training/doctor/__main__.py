"""`python -m training.doctor`."""

import sys

from training.doctor.cli import main

sys.exit(main())
