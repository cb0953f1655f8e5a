"""Running corpus cases through the real ``valuecube`` CLI and reading what they left behind.

One case per ``python -m valuecube`` process (:func:`run_cli`), or many cases one after
another in one process (:func:`run_batch`, the same entry point, each case with its own
output streams and exit code).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from conftest import CDNOW_CONFIG, ROOT, TELCO_CONFIG

BATCH = Path(__file__).with_name("corpus_batch.py")
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


def cli_args(
    command: str, model_uri: str | None, input_path: Path, folder: Path, *, rejects: bool
) -> tuple[list[str], Path, Path | None]:
    """``valuecube segment`` (Telco or CDNOW config by the input's suffix) or ``score`` args."""
    output = folder / "out.csv"
    rejects_path = folder / "rejects.csv" if rejects else None
    if command == "segment":
        config = CDNOW_CONFIG if input_path.suffix == ".txt" else TELCO_CONFIG
        args = ["segment", "-c", str(config)]
    else:
        args = ["score", "-m", str(model_uri), "--reasons", "0"]  # input handling, not reasons
    args += ["-i", str(input_path), "-o", str(output)]
    if rejects_path is not None:
        args += ["--rejects", str(rejects_path)]
    return args, output, rejects_path


ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run_cli(
    command: str, model_uri: str | None, input_path: Path, folder: Path, *, rejects: bool
) -> Run:
    """Run one case as its own ``python -m valuecube`` process."""
    args, output, rejects_path = cli_args(command, model_uri, input_path, folder, rejects=rejects)
    before = digest(input_path)
    done = subprocess.run(
        [sys.executable, "-m", "valuecube", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **ENV},
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


@dataclass(frozen=True)
class Job:
    """One case for :func:`run_batch`."""

    name: str
    command: str
    model_uri: str | None
    input_path: Path
    folder: Path
    rejects: bool


def run_batch(jobs: list[Job]) -> dict[str, Run]:
    """Run cases one after another in one process (``corpus_batch.py``), each through the CLI.

    Each case has its own exit code, stdout and stderr (an escaping exception is
    written to its stderr as a traceback); the process itself must exit 0.
    """
    spec, meta = [], {}
    for job in jobs:
        args, output, rejects_path = cli_args(
            job.command, job.model_uri, job.input_path, job.folder, rejects=job.rejects
        )
        spec.append({"name": job.name, "args": args})
        meta[job.name] = (output, rejects_path, job.input_path, digest(job.input_path))
    done = subprocess.run(
        [sys.executable, str(BATCH)],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **ENV},
        timeout=300 + 30 * len(jobs),
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and len(results) == len(jobs), done.stderr[-3000:]
    runs = {}
    for r in results:
        output, rejects_path, input_path, before = meta[r["name"]]
        runs[r["name"]] = Run(
            r["code"], r["stdout"], r["stderr"], output, rejects_path, digest(input_path) == before
        )
    return runs
