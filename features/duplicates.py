"""Duplicate customer ids across the chunks of a streamed customer table (the first row is kept).

A streaming job cannot take back a row it has already written, so the
*first* row of an id is kept and the later ones are rejected, whatever the
chunk boundaries. The ids met so far are kept as NumPy byte strings grouped
by their exact UTF-8 length: each group a sorted ``S<length>`` array with the
line of each id's first row. Memory is therefore the ids' total length plus
8 bytes a customer (5,000,000 ten-character ids ≈ 90 MB), however long the
longest id is; lookups are binary searches per length group, vectorised
over the chunk.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from valuecube.features.config import InputSpec
from valuecube.features.inputs import LINE, REASON, RawChunk, text_rows


def _by_length(strings: pa.Array | pa.ChunkedArray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Non-null, non-empty strings grouped by UTF-8 length: ``[(positions, S<length> values)]``.

    Each group is gathered straight from the Arrow buffers (no Python objects).
    """
    array = strings.combine_chunks() if isinstance(strings, pa.ChunkedArray) else strings
    array = pc.cast(array, pa.large_binary())
    if len(array) == 0:
        return []
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ]
    data = np.frombuffer(array.buffers()[2], dtype=np.uint8) if array.buffers()[2] else None
    lengths = np.diff(offsets)
    if array.null_count:
        lengths = np.where(array.is_null().to_numpy(zero_copy_only=False), 0, lengths)
    groups = []
    for length in np.unique(lengths[lengths > 0]):
        where = np.flatnonzero(lengths == length)
        gathered = data[offsets[where][:, None] + np.arange(length)]
        groups.append((where, np.ascontiguousarray(gathered).view(f"S{length}").ravel()))
    return groups


class SeenIds:
    """The ids met so far and the line of each one's first row (see the module docstring)."""

    def __init__(self) -> None:
        self.ids: dict[int, np.ndarray] = {}
        self.lines: dict[int, np.ndarray] = {}

    @property
    def nbytes(self) -> int:
        """Memory held: the ids' total length plus 8 bytes each."""
        return sum(a.nbytes for a in self.ids.values()) + sum(a.nbytes for a in self.lines.values())

    def check(self, ids: pa.Array | pa.ChunkedArray, lines: np.ndarray) -> np.ndarray:
        """For each id, the line of an earlier row with that id, or 0; then remember the new ones.

        Null and empty ids are never duplicates (0). Within ``ids`` the first
        occurrence counts as new and later ones point at it.
        """
        first_line = np.zeros(len(ids), dtype=np.int64)
        for where, values in _by_length(ids):
            first_line[where] = self._check_group(values, np.asarray(lines)[where])
        return first_line

    def _check_group(self, values: np.ndarray, lines: np.ndarray) -> np.ndarray:
        width = values.dtype.itemsize
        first = np.zeros(len(values), dtype=np.int64)
        known = self.ids.get(width)
        if known is not None:
            pos = np.minimum(np.searchsorted(known, values), len(known) - 1)
            hit = known[pos] == values
            first[hit] = self.lines[width][pos[hit]]
        _, first_at, inverse = np.unique(values, return_index=True, return_inverse=True)
        copy = np.arange(len(values)) != first_at[inverse]  # later copies inside this chunk
        first = np.where(copy & (first == 0), lines[first_at[inverse]], first)
        new = first == 0
        if new.any():
            order = np.argsort(values[new], kind="stable")
            add, add_lines = values[new][order], lines[new][order]
            if known is None:
                self.ids[width], self.lines[width] = add, add_lines
            else:
                at = np.searchsorted(known, add)
                self.ids[width] = np.insert(known, at, add)
                self.lines[width] = np.insert(self.lines[width], at, add_lines)
        return first


def split_duplicates(
    chunk: RawChunk, spec: InputSpec, seen: SeenIds
) -> tuple[RawChunk, pd.DataFrame]:
    """Take out rows whose id was met before (here or earlier): ``(the rest, their rejects)``."""
    ids = pc.utf8_trim_whitespace(pc.cast(chunk.table.column(spec.id_column), pa.string()))
    first = seen.check(ids, chunk.lines)
    dup = first > 0
    if not dup.any():
        return chunk, pd.DataFrame()
    where = np.flatnonzero(dup)
    rejects = text_rows(chunk, spec, where)
    rejects.insert(0, LINE, rejects.index)
    values = ids.take(pa.array(where, type=pa.int64())).to_pylist()  # only the duplicates
    rejects[REASON] = [
        f"duplicate {spec.id_column} {v!r} (first on line {f})"
        for v, f in zip(values, first[where], strict=True)
    ]
    keep = np.flatnonzero(~dup)
    kept = chunk.take(keep)  # keeps the read problems of the rows
    return kept, rejects.reset_index(drop=True)
