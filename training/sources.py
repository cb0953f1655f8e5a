"""Naming a data file in a logged run, and finding it again.

A run logs its input relative to the project root when the file lies under
it (the same name from any checkout), else as a ``file://`` URI. Imports
nothing heavy: the process that logs a scoring job's run uses it.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
"""The source checkout this package runs from (the folder holding ``pyproject.toml``)."""


def relative_source(path: str | Path) -> str:
    """``path`` relative to the project root when it lies under it, else its ``file://`` URI."""
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(PROJECT_ROOT).as_posix()
    except ValueError:
        return resolved.as_uri()


def resolve_source(source: str) -> Path:
    """The local file a logged source names: a ``file://`` URI, or a path under cwd or project.

    Raises
    ------
    FileNotFoundError
        Naming every place looked at.
    """
    if source.startswith("file://"):
        candidates = [Path(source.removeprefix("file://"))]
    elif "://" in source:
        raise FileNotFoundError(f"the training data {source} is not a local file; pass --eval-data")
    else:
        candidates = [Path.cwd() / source, PROJECT_ROOT / source]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the training data {source} was not found (looked in {', '.join(map(str, candidates))}); "
        "pass --eval-data with a labelled file"
    )
