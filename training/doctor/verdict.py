"""One doctor check's answer: status, the evidence behind it, and the fix."""

from __future__ import annotations

from dataclasses import dataclass

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"


@dataclass
class Verdict:
    check: str
    status: str
    evidence: str
    fix: str = ""
    seconds: float = 0.0  # how long the check took (doctor.json; the doctor benchmark reports it)
