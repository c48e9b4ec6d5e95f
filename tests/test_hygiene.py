"""Hygiene: no credentials in the repository, no unpickling in production code, pinned deps."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET_PATTERNS = [
    r"-----BEGIN (RSA |EC |)PRIVATE KEY-----",
    r"\"private_key_id\"\s*:",
    r"\"type\"\s*:\s*\"service_account\"",
    r"AKIA[0-9A-Z]{16}",
    r"AIza[0-9A-Za-z_\-]{35}",
    r"xox[baprs]-[0-9A-Za-z-]{10,}",
]


def tracked_files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.splitlines() if not p.endswith((".png", ".npz", ".parquet"))]


def test_no_credentials_in_tracked_files():
    for path in tracked_files():
        text = path.read_text(errors="ignore")
        for pattern in SECRET_PATTERNS:
            assert not re.search(pattern, text), f"{path} matches {pattern}"
    for manifest in (ROOT / "k8s").rglob("*.yaml"):
        assert "kind: Secret" not in manifest.read_text(), manifest


def test_production_code_never_unpickles_files():
    packages = ("contract", "evaluation", "preprocessing", "prediction", "training")
    for path in [p for package in packages for p in (ROOT / package).rglob("*.py")]:
        text = path.read_text()
        assert "pickle.load" not in text and "allow_pickle=True" not in text, path


def test_every_dependency_is_pinned_in_constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    for name in ("tensorflow", "tf-keras", "apache-beam", "pyarrow", "google-cloud-storage", "numpy"):
        assert name in pins, name
    assert pins["tensorflow"].startswith("2.21.") and pins["apache-beam"].startswith("2.77.")
