"""Running one corpus case as a real ``valuecube`` subprocess and reading what it left behind."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from conftest import CDNOW_CONFIG, ROOT, TELCO_CONFIG

COUNT = re.compile(r"(rows read|rows rejected|scored|rejected|customers scored) ([\d,]+)")


@dataclass(frozen=True)
class Run:
    """What one command did: exit code, output text, files written, counts printed."""

    code: int
    stdout: str
    stderr: str
    output: Path
    rejects: Path | None
    input_unchanged: bool

    @property
    def text(self) -> str:
        """stdout and stderr with the terminal's line wrapping undone."""
        return " ".join((self.stdout + " " + self.stderr).split())

    def counts(self) -> dict[str, int]:
        """The numbers of the summary line on stdout (``rows read``, ``rejected``, ``scored``)."""
        found = {
            k: int(v.replace(",", "")) for k, v in COUNT.findall(" ".join(self.stdout.split()))
        }
        if "rows rejected" in found:
            found.setdefault("rejected", found["rows rejected"])
        if "customers scored" in found:
            found.setdefault("scored", found["customers scored"])
        return found

    def rejects_frame(self) -> pd.DataFrame | None:
        if self.rejects is None or not self.rejects.is_file():
            return None
        return pd.read_csv(self.rejects, dtype=str, keep_default_na=False)


def digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def run_cli(
    command: str, model_uri: str | None, input_path: Path, folder: Path, *, rejects: bool
) -> Run:
    """Run ``valuecube segment`` (Telco or CDNOW config by the input's suffix) or ``score``."""
    output = folder / "out.csv"
    rejects_path = folder / "rejects.csv" if rejects else None
    if command == "segment":
        config = CDNOW_CONFIG if input_path.suffix == ".txt" else TELCO_CONFIG
        args = ["segment", "-c", str(config)]
    else:
        args = ["score", "-m", str(model_uri)]
    args += ["-i", str(input_path), "-o", str(output)]
    if rejects_path is not None:
        args += ["--rejects", str(rejects_path)]
    before = digest(input_path)
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "valuecube", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
        check=False,
    )
    return Run(
        done.returncode,
        done.stdout,
        done.stderr,
        output,
        rejects_path,
        digest(input_path) == before,
    )
