"""The diagnostics: why a run does not learn, before it starts and while it runs.

`cli.py` is seqscale-doctor (`python -m training.doctor`): pre-flight checks on a dataset and the
trainer's flags (`checks_data.py`, `checks_model.py`, over the numpy-only `learnability.py`,
`lr_range.py`, `seasonality.py`). `loss_patterns.py` names the cause a loss curve shows, for the
trainer's loss guard (`training/guard.py`). Verdicts are `verdict.py`'s.
"""

from training.doctor.cli import build_parser, main, run_checks

__all__ = ["build_parser", "main", "run_checks"]
