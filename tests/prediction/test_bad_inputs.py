"""The preprocessing job's bad inputs, given to seqscale-predict: the same kind of exit-2 message
naming file, row and column, with advice that fits predict (the policies come from the export),
and nothing left in --output."""

import numpy as np
import pandas as pd
import pytest

import training  # noqa: F401
from prediction.cli import run as predict
from preprocessing.errors import SeqscaleError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    from tests.prediction.test_forecast import make_export

    return make_export(tmp_path_factory.mktemp("bad_predict"))


def bad(raw: pd.DataFrame, case: str) -> pd.DataFrame:
    df = raw.copy()
    if case == "missing_column":
        return df.drop(columns=["x2"])
    if case == "non_numeric":
        df = df.astype({"x1": object})
        df.loc[17, "x1"] = "abc"
    elif case == "nan":
        df.loc[5, "y"] = np.nan
    elif case == "inf":
        df.loc[9, "x2"] = np.inf
    elif case == "empty_series":
        df = df.astype({"sid": object})
        df.loc[3, "sid"] = None
    elif case == "bad_time":
        df = df.astype({"t": object})
        df.loc[7, "t"] = "yesterday"
    elif case == "duplicate":
        df = pd.concat([df, df.iloc[[-1]]], ignore_index=True)
    elif case == "huge":
        df.loc[len(df) - 1, "x1"] = 1e39
    return df


CASES = {
    "missing_column": r"in\.csv: column 'x2' is missing \(the file has",
    "non_numeric": r"in\.csv row 18 \(line 19\): column 'x1' has non-numeric value 'abc'; fix the value \(the "
                   r"export's --nan-policy decides",
    "nan": r"in\.csv row 6 \(line 7\): column 'y' is missing \(NaN\); fix the input: the model's dataset was made "
           r"with --nan-policy fail",
    "inf": r"in\.csv row 10 \(line 11\): column 'x2' is inf",
    "empty_series": r"in\.csv row 4 \(line 5\): series column 'sid' is empty",
    "bad_time": r"in\.csv row 8 \(line 9\): time column 't' has",
    "duplicate": r"series 's2' has two rows at time 1499: .*in\.csv row 4500 .*and .*in\.csv row 4501",
    "huge": r"in\.csv row 4500 \(line 4501\): column 'x1' is 1e\+39, which is beyond float32",
}


# "huge" is the series' last row: a forecast reads it, but it is no scored window's input
@pytest.mark.parametrize(("case", "mode"), [(c, m) for m in ("forecast", "score") for c in CASES
                                            if not (m == "score" and c == "huge")])
def test_bad_input_names_file_row_and_column(export, tmp_path, case, mode):
    export_dir, raw = export
    bad(raw, case).to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out"
    with pytest.raises(SeqscaleError, match=CASES[case]) as info:
        predict(["--export", str(export_dir), "--input", str(tmp_path / "in.csv"), "--output", str(out),
                 *(["--split", "test"] if mode == "score" else [])])
    assert str(info.value).count("seqscale error:") == 1
    assert "--nan-policy drop (drop such rows)" not in str(info.value)  # predict has no such flag
    assert not out.exists()
