"""The data contract between preprocessing and training: the only code both stages share.

Imports neither Beam nor TensorFlow (numpy only), so the Beam workers, the trainer image
and the tests can all import it cheaply. Three small modules, each with one role:

- `contract.window`: `WindowSpec`, the only place window arithmetic lives.
- `contract.records`: record keys, the encoding name, split names, series ids.
- `contract.manifest`: the typed `metadata.json` (`Manifest`), written last by the job.
"""

from contract.manifest import (
    FORMAT_VERSION,
    MANIFEST_NAME,
    Boundaries,
    ColumnInfo,
    Counts,
    DatasetSpec,
    Encoding,
    Manifest,
    ManifestError,
    ShardInfo,
)
from contract.records import ENCODING, RECORD_KEYS, SPLITS, TEST, TRAIN, VAL, series_id
from contract.window import WindowSpec

__all__ = [
    "ENCODING",
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "RECORD_KEYS",
    "SPLITS",
    "TEST",
    "TRAIN",
    "VAL",
    "Boundaries",
    "ColumnInfo",
    "Counts",
    "DatasetSpec",
    "Encoding",
    "Manifest",
    "ManifestError",
    "ShardInfo",
    "WindowSpec",
    "series_id",
]
