"""Run many ``valuecube`` command lines in one Python process: the corpus's batch driver.

Usage: ``python corpus_batch.py`` with a JSON list of ``{"name": ..., "args": [...]}`` on
stdin; prints one JSON object per line, ``{"name", "code", "stdout", "stderr"}``.

Each command goes through the real entry point (:data:`valuecube.cli.app`, as
``python -m valuecube`` does) with its own stdout and stderr (``typer.testing.CliRunner``)
and its own exit code. An exception that escapes the command is written to that
command's stderr as the interpreter would print it (``Traceback ...``) with exit code 1,
so the corpus's "no traceback" check holds as for a real process. It saves the start-up
of one interpreter (numpy, pandas, torch, MLflow imports: seconds) per case; a few cases
still run as true subprocesses (``test_corpus.SUBPROCESS``).
"""

from __future__ import annotations

import json
import sys
import traceback

from typer.testing import CliRunner


def main() -> None:
    from valuecube.cli import app

    jobs = json.load(sys.stdin)
    out = sys.stdout
    runner = CliRunner()
    for job in jobs:
        result = runner.invoke(app, job["args"], catch_exceptions=True)
        stderr = result.stderr
        code = result.exit_code
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            stderr += "".join(traceback.format_exception(*result.exc_info))
            code = 1
        out.write(
            json.dumps(
                {"name": job["name"], "code": code, "stdout": result.stdout, "stderr": stderr}
            )
            + "\n"
        )
        out.flush()


if __name__ == "__main__":
    main()
