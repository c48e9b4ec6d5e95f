"""benchmarks.study_defaults' summary: each candidate's mean validation loss relative to a reference."""

import pytest

from benchmarks.study_defaults import relative


def test_relative_to_the_defaults_or_else_the_first_candidate():
    results = {"defaults": {"a": {"val_loss": 2.0}, "b": {"val_loss": 4.0}},
               "members 3": {"a": {"val_loss": 1.0}, "b": {"val_loss": 4.0}},
               "members 3, batch 8": {"a": {"val_loss": 0.5}, "b": {"val_loss": 2.0}}}
    ref, table = relative(results, list(results), ["a", "b"])
    assert ref == "defaults" and table["members 3"][0] == [0.5, 1.0]
    assert table["members 3"][1] == pytest.approx(0.5**0.5)
    # without "defaults" (this study crashed with a KeyError before): against the first candidate
    ref, table = relative(results, ["members 3", "members 3, batch 8"], ["a", "b"])
    assert ref == "members 3" and table["members 3"] == ([1.0, 1.0], 1.0)
    assert table["members 3, batch 8"][0] == [0.5, 0.5] and table["members 3, batch 8"][1] == pytest.approx(0.5)
