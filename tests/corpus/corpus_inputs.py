"""Input files for the bad-input corpus: small slices of the bundled data, edited one way each.

Every builder takes the case's folder and returns the path it wrote. Lines
are numbered as in the file (header = line 1), so a case's expected reject
lines read like the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd
from conftest import CDNOW_TXT, TELCO_CSV

TELCO_LINES = TELCO_CSV.read_text().splitlines()
TELCO_HEADER = TELCO_LINES[0].split(",")
CDNOW_LINES = CDNOW_TXT.read_text().splitlines()
N_ROWS = 40
"""Data rows of a telco case file (enough customers for the cube)."""

Builder = Callable[[Path], Path]


def telco_rows(n: int = N_ROWS) -> list[str]:
    """The header and the first ``n`` data lines of the Telco file."""
    return list(TELCO_LINES[: n + 1])


def set_cell(line: str, column: str, value: str) -> str:
    """A Telco line with one cell replaced (the sample's lines hold no quoted commas)."""
    cells = line.split(",")
    cells[TELCO_HEADER.index(column)] = value
    return ",".join(cells)


def write(folder: Path, lines: list[str], name: str = "in.csv", end: str = "\n") -> Path:
    path = folder / name
    path.write_bytes((end.join(lines) + end).encode())
    return path


def telco(edit: Callable[[list[str]], list[str]] | None = None, name: str = "in.csv") -> Builder:
    """A builder: the Telco slice, changed by ``edit`` (a function of the list of lines)."""

    def build(folder: Path) -> Path:
        lines = telco_rows()
        return write(folder, edit(lines) if edit else lines, name)

    return build


def cells(edits: dict[int, tuple[str, str]]) -> Builder:
    """Telco slice with cells replaced: ``{file line: (column, value)}``."""

    def edit(lines: list[str]) -> list[str]:
        for line, (column, value) in edits.items():
            lines[line - 1] = set_cell(lines[line - 1], column, value)
        return lines

    return telco(edit)


def lines_at(
    replace: dict[int, str] | None = None, insert: dict[int, str] | None = None
) -> Builder:
    """Telco slice with whole lines replaced (``{line: text}``) and lines inserted before others."""

    def edit(lines: list[str]) -> list[str]:
        for line, text in (replace or {}).items():
            lines[line - 1] = text
        for line, text in sorted((insert or {}).items(), reverse=True):
            lines.insert(line - 1, text)
        return lines

    return telco(edit)


def raw_bytes(data: bytes, name: str = "in.csv") -> Builder:
    def build(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    return build


def latin1() -> Builder:
    """The Telco slice saved as Latin-1 with an accented value on line 5."""

    def build(folder: Path) -> Path:
        lines = telco_rows()
        lines[4] = set_cell(lines[4], "paymentmethod", "Chèque")
        path = folder / "in.csv"
        path.write_bytes(("\n".join(lines) + "\n").encode("latin-1"))
        return path

    return build


def separated(sep: str) -> Builder:
    return telco(lambda lines: [line.replace(",", sep) for line in lines])


def ids(new_ids: dict[int, str]) -> Builder:
    """Telco slice with customer ids replaced (quoted when they hold a comma or quote)."""
    quoted = {
        k: ('"' + v.replace('"', '""') + '"') if any(c in v for c in ',"') else v
        for k, v in new_ids.items()
    }
    return cells({line: ("customerid", v) for line, v in quoted.items()})


def parquet(edit: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> Builder:
    def build(folder: Path) -> Path:
        frame = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).head(N_ROWS)
        path = folder / "in.parquet"
        (edit(frame) if edit else frame).to_parquet(path, index=False)
        return path

    return build


def directory() -> Builder:
    def build(folder: Path) -> Path:
        path = folder / "in.csv"
        path.mkdir()
        return path

    return build


def missing_file() -> Builder:
    return lambda folder: folder / "nothing-here.csv"


def cdnow(n: int = 300, edit: Callable[[list[str]], list[str]] | None = None) -> Builder:
    """The header and the first ``n`` data lines of the CDNOW log, changed by ``edit``."""

    def build(folder: Path) -> Path:
        lines = list(CDNOW_LINES[: n + 1])
        return write(folder, edit(lines) if edit else lines, "in.txt")

    return build


def cdnow_dates(dates: dict[int, str], n: int = 300) -> Builder:
    """CDNOW slice with the date of some lines replaced (``{file line: yyyymmdd}``)."""

    def edit(lines: list[str]) -> list[str]:
        for line, date in dates.items():
            cells = lines[line - 1].split()
            cells[1] = date
            lines[line - 1] = " " + "  ".join(cells)
        return lines

    return cdnow(n, edit)


def cdnow_all_before_window(n: int = 20) -> Builder:
    """Every purchase dated 1996, before the config's window_start (1997-01-01)."""
    return cdnow_dates({line: "19961215" for line in range(2, n + 2)}, n)


def frame_csv(edit: Callable[[pd.DataFrame], pd.DataFrame], quoting: int = 0) -> Builder:
    """The Telco slice as a frame, changed by ``edit``, written by pandas (``quoting`` as csv)."""

    def build(folder: Path) -> Path:
        frame = pd.read_csv(TELCO_CSV, dtype=str, keep_default_na=False).head(N_ROWS)
        path = folder / "in.csv"
        edit(frame).to_csv(path, index=False, quoting=quoting)
        return path

    return build


def crlf_bom() -> Builder:
    def build(folder: Path) -> Path:
        path = folder / "in.csv"
        path.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(telco_rows()) + "\r\n").encode())
        return path

    return build


def spanning_quote() -> Builder:
    """Line 3's payment method quoted across two lines; line 8 (after it) has a bad tenure."""

    def edit(lines: list[str]) -> list[str]:
        lines[2] = set_cell(lines[2], "paymentmethod", '"Mailed\ncheck"')
        lines[6] = set_cell(lines[6], "tenure", "ten")
        return lines

    return telco(edit)
