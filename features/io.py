"""Writing tables atomically (CSV or Parquet by the file's extension), and checking where they go.

A crash or a kill while writing never leaves a file at the destination that
looks complete: the table goes to a hidden temporary file in the same folder
(``.NAME.XXXX.partial``), is flushed to disk, and is then renamed over the
destination in one step. The file gets the mode a plain ``open`` would give
it (``0666`` less the umask), or the mode of the file it replaces.

:func:`check_output_paths` refuses, before any work, an output that would
destroy the input or another output, or that cannot be written at all.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")


class OutputPathError(ValueError):
    """An output path that must not or cannot be written; the message says which and what to do."""


def table_format(path: str | Path) -> str:
    """``"parquet"`` or ``"csv"`` from the extension; anything else is an error."""
    suffix = Path(path).suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    if suffix in CSV_SUFFIXES:
        return "csv"
    raise ValueError(f"{path}: unknown output format {suffix!r}; use .csv or .parquet")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file, however spelled (``..``, symlinks, hard links)."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False


def _umask() -> int:
    """The process's umask, read without changing it where the system allows."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _probe_writable(folder: Path, option: str, path: Path) -> None:
    """Create and delete a temporary file in ``folder`` (or its nearest existing ancestor, so
    that the check creates no folder); a clear error when that fails."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        if not existing.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, f"{existing} is a file, not a folder")
        fd, name = tempfile.mkstemp(prefix=".valuecube-probe.", dir=existing)
    except OSError as exc:
        raise OutputPathError(
            f"{option} {path}: cannot write in {folder} ({exc.strerror or exc}); "
            "choose a folder you can write to"
        ) from exc
    os.close(fd)
    os.unlink(name)


def check_output_paths(
    input_path: str | Path | None,
    outputs: dict[str, str | Path | None],
    *,
    folders: tuple[str, ...] = (),
) -> None:
    """Refuse output paths that would lose data or cannot be written, before any work is done.

    Parameters
    ----------
    input_path
        The input file: no output may be it, however the path is spelled
        (resolved paths, then :func:`os.path.samefile` for links).
    outputs
        Option name → path (``{"--output": …, "--rejects": …}``); ``None``
        entries are skipped. No two may be the same file; none may be an
        existing folder (unless its option is in ``folders``, for outputs
        that are folders, such as Spark's); each one's folder must accept a
        new file (probed by creating and deleting one).

    Raises
    ------
    OutputPathError
        Naming the option, the path and what to do instead.
    """
    given = {option: Path(p) for option, p in outputs.items() if p is not None}
    if input_path is not None:
        for option, path in given.items():
            if _same_file(Path(input_path), path):
                raise OutputPathError(
                    f"{option} {path} is the input file {input_path}; writing it would destroy "
                    "the input. Choose another path"
                )
    names = list(given)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if _same_file(given[a], given[b]):
                raise OutputPathError(
                    f"{a} and {b} are the same file ({given[a]}); one would overwrite the other. "
                    "Give them different paths"
                )
    for option, path in given.items():
        if path.is_dir() and option not in folders:
            raise OutputPathError(
                f"{option} {path} is an existing folder; give a file path, "
                f"e.g. {path / ('scores' + (path.suffix or '.parquet'))}"
            )
        _probe_writable(path.parent, option, path)


class AtomicFile:
    """A hidden temporary file beside ``path`` (``.NAME.XXXX.partial``), renamed to ``path``.

    Write to :attr:`handle` (binary); :meth:`commit` flushes, fsyncs and
    renames it over ``path``; :meth:`abort` deletes it. As a context manager
    it commits when the block succeeds and aborts when it raises.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".partial", dir=self.path.parent
            )
        except OSError as exc:
            raise OutputPathError(
                f"cannot write {self.path}: {exc.strerror or exc} in {self.path.parent}"
            ) from exc
        try:  # the mode open() would give, or the replaced file's (mkstemp makes it 0600)
            replaced = os.stat(self.path)
            mode = stat.S_IMODE(replaced.st_mode) if stat.S_ISREG(replaced.st_mode) else None
        except OSError:
            mode = None
        os.fchmod(fd, mode if mode is not None else 0o666 & ~_umask())
        self.tmp = Path(name)
        self.handle = os.fdopen(fd, "wb")

    def commit(self) -> Path:
        """Make the written bytes appear at ``path``."""
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        """Drop the temporary file; ``path`` keeps whatever it had."""
        try:
            self.handle.close()
        except OSError:  # a failed flush (disk full): the file goes anyway
            pass
        finally:
            self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def write_table(frame: pd.DataFrame, path: str | Path, *, index: bool = False) -> Path:
    """Write ``frame`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    fmt = table_format(path)
    with AtomicFile(path) as file:
        if fmt == "parquet":
            frame.to_parquet(file.handle, index=index)
        else:
            frame.to_csv(file.handle, index=index)
    return path


class AtomicWriter:
    """Append DataFrames to an :class:`AtomicFile`; :meth:`commit` makes the whole table appear.

    CSV or Parquet by the extension of ``path``. Parquet row groups are
    written in a background thread (one in flight), overlapping the caller's
    next chunk. Use as a context manager: leaving it by an exception deletes
    the temporary file.
    """

    def __init__(self, path: str | Path, schema: pa.Schema | None = None) -> None:
        self.path = Path(path)
        self.format = table_format(self.path)
        self.file = AtomicFile(self.path)
        self.handle = self.file.handle
        self.schema = schema
        self.parquet: pq.ParquetWriter | None = None
        self.rows = 0
        self.header_written = False
        self.pending: threading.Thread | None = None
        self.error: BaseException | None = None

    def write(self, frame: pd.DataFrame) -> None:
        """Append rows (the first call fixes the schema when none was given)."""
        if self.schema is None:
            self.schema = pa.Schema.from_pandas(frame, preserve_index=False).remove_metadata()
        if self.format == "parquet":
            if len(frame):
                table = pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)
                self._wait()
                self.pending = threading.Thread(
                    target=self._write, args=(self._parquet(), table), daemon=True
                )
                self.pending.start()
        else:
            frame.to_csv(
                self.handle,
                index=False,
                header=not self.header_written,
                date_format="%Y-%m-%dT%H:%M:%S.%fZ" if "scored_at" in frame.columns else None,
            )
            self.header_written = True
        self.rows += len(frame)

    def _parquet(self) -> pq.ParquetWriter:
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.handle, self.schema or pa.schema([]))
        return self.parquet

    def _write(self, writer: pq.ParquetWriter, table: pa.Table) -> None:
        try:
            writer.write_table(table)
        except BaseException as exc:  # re-raised by _wait in the caller's thread
            self.error = exc

    def _wait(self) -> None:
        if self.pending is not None:
            self.pending.join()
            self.pending = None
        if self.error is not None:
            raise self.error

    def commit(self) -> Path:
        """Finish the file, fsync it and rename it over the destination."""
        self._wait()
        if self.format == "parquet":
            self._parquet().close()
        elif not self.header_written and self.schema is not None:
            self.handle.write((",".join(self.schema.names) + "\n").encode())
        return self.file.commit()

    def abort(self) -> None:
        """Drop the temporary file."""
        try:
            if self.pending is not None:
                self.pending.join()
            if self.parquet is not None:
                self.parquet.close()
        except Exception:  # the file is dropped whatever state the writer is in
            pass
        finally:
            self.file.abort()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
