"""Build a Dockerfile stage without Docker: a fresh venv stands in for the base image, and the
stage's own COPY, WORKDIR, ENV and `python -m pip` / `python setup.py` RUN lines run as written.

This machine has no Docker engine, and what users run is the image, not the project's .venv.
So the tests do not restate the install commands: they execute the Dockerfile's, in a fresh
venv from this machine's Python (the base images carry the same Python version), with the
image's absolute paths mapped into a scratch directory. Lines that only matter inside a real
image (useradd) are skipped, and anything else unexpected fails the build, so a Dockerfile
change that the tests cannot follow is noticed, not ignored.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_RUN = ("useradd ",)  # users exist only in a real image
SYSTEM_DIRS = ("/usr/", "/bin/", "/etc/", "/dev/", "/proc/", "/opt/google/", "/opt/apache/")


@dataclass
class Stage:
    name: str
    base: str
    lines: list[tuple[str, str]] = field(default_factory=list)


def parse(path: Path) -> dict[str, Stage]:
    """Stages by name (or index), with ARG defaults substituted in FROM."""
    text = re.sub(r"\\\n", " ", path.read_text())
    args, stages, current = {}, {}, None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        op, _, rest = line.partition(" ")
        op, rest = op.upper(), rest.strip()
        if op == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif op == "FROM":
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), ""), rest).split()[0]
            m = re.search(r"\s+AS\s+(\S+)$", rest, flags=re.I)
            name = m.group(1) if m else str(len(stages))
            current = stages[name] = Stage(name, base)
        elif current is not None:
            current.lines.append((op, rest))
    return stages


class Build:
    """One stage built into `scratch`: `fs` is its filesystem root, `python` the venv's interpreter."""

    def __init__(self, dockerfile: Path, target: str, scratch: Path, *, timeout: int = 900) -> None:
        self.stages = parse(dockerfile)
        self.scratch, self.timeout = scratch, timeout
        self.built: dict[str, Path] = {}
        self.envs: dict[str, dict[str, str]] = {}
        self.skipped: list[str] = []
        self.fs = self._build(target)
        self.env = self.envs[target]
        self.venv = self.scratch / target / "venv"
        self.python = self.venv / "bin" / "python"

    def _build(self, name: str) -> Path:
        if name in self.built:
            return self.built[name]
        stage = self.stages[name]
        if stage.base in self.stages:  # FROM another stage: continue in its filesystem and venv
            fs = self._build(stage.base)
            venv = self.scratch / stage.base / "venv"
            (self.scratch / name).mkdir(parents=True, exist_ok=True)
            os.symlink(venv, self.scratch / name / "venv")
            env = dict(self.envs[stage.base])  # ENV is inherited from the stage built upon
        else:
            fs = self.scratch / name / "fs"
            fs.mkdir(parents=True)
            venv = self.scratch / name / "venv"
            subprocess.run([_base_python(), "-m", "venv", str(venv)], check=True, timeout=120)
            env = {}
        cwd = fs
        for op, arg in stage.lines:
            if op == "WORKDIR":
                cwd = self._map(fs, arg)
                cwd.mkdir(parents=True, exist_ok=True)
            elif op == "ENV":
                env.update(_env_pairs(arg))
            elif op == "COPY":
                self._copy(fs, cwd, arg)
            elif op == "RUN":
                self._run(fs, cwd, venv, env, arg)
        self.envs[name] = env
        self.built[name] = fs
        return fs

    def _map(self, fs: Path, path: str) -> Path:
        return fs / path.lstrip("/")

    def _copy(self, fs: Path, cwd: Path, arg: str) -> None:
        parts = shlex.split(arg)
        source_root = ROOT
        if parts[0].startswith("--from="):
            source_root = self._build(parts.pop(0).split("=", 1)[1])
        *sources, dest = parts
        target = self._map(fs, dest) if dest.startswith("/") else cwd / dest
        for src in sources:
            origin = source_root / src.lstrip("/")
            if origin.is_dir():
                shutil.copytree(origin, target, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)

    def _run(self, fs: Path, cwd: Path, venv: Path, env: dict, command: str) -> None:
        if command.startswith(SKIPPED_RUN):
            self.skipped.append(command)
            return
        if not command.startswith(("python -m pip ", "python setup.py ")):
            raise AssertionError(f"tests/dockerfile.py does not know how to run: RUN {command}")

        def mapped(m):
            path = m.group(0)
            return path if path.startswith(SYSTEM_DIRS) else str(self._map(fs, path))

        command = re.sub(r"(?<![\w.$/-])/[\w./*-]+", mapped, command)
        full = {**os.environ, **env, "PATH": f"{venv / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(venv)}
        full.pop("PYTHONPATH", None)
        proc = subprocess.run(["bash", "-euo", "pipefail", "-c", command], cwd=str(cwd), env=full,
                              capture_output=True, text=True, timeout=self.timeout)
        if proc.returncode != 0:
            raise AssertionError(f"RUN {command} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _env_pairs(arg: str) -> dict[str, str]:
    return dict(p.split("=", 1) for p in shlex.split(arg))


def _base_python() -> str:
    """The interpreter the venvs are made from: this machine's Python 3.11, like the base images."""
    return getattr(sys, "_base_executable", None) or sys.executable
