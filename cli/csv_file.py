"""A CSV file people made in a spreadsheet, read the one way every `liftoff` CSV import
reads it (the handoff, outcomes, health scores).

Takes what spreadsheets write: UTF-8 with or without a BOM, Shift_JIS from Japanese
Excel, Excel's UTF-16 "Unicode Text" (any encoding `records.csv_text` can tell), cells
separated by commas, tabs or semicolons, full-width digits and letters (NFKC).
Refuses what would silently lose data: a column it does not know is named with the
closest known one. File-level problems raise BadInput; each row's problems are the
caller's to collect, by line number, so every problem is reported in one pass.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cli.errors import BadInput
from records.csv_text import UndecodableText, csv_delimiter, decode_csv_bytes, unknown_columns

# A CSV import is a list of customers or of their outcomes, not a data dump.
MAX_FILE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class CsvRow:
    # The file's line where the row ends (line 1 is the header).
    line: int
    # Each known column's cell, NFKC-normalised and stripped; "" when empty or absent.
    cells: dict[str, str]
    # The row has more values than the header has columns.
    overflowing: bool


@dataclass(frozen=True)
class CsvTable:
    rows: list[CsvRow]
    # The encoding the bytes were read in, as Python names it ("utf_8", "cp932").
    encoding: str


def normal(text: str) -> str:
    # Full-width digits and letters, as Japanese input methods type them, read as ASCII.
    return unicodedata.normalize("NFKC", text).strip()


def columns_help(columns: Mapping[str, str]) -> str:
    width = max(len(name) for name in columns)
    lines = [f"  {name:<{width}}  {text}" for name, text in columns.items()]
    return "CSV columns (a header row names them, in any order):\n" + "\n".join(lines)


def read_csv_table(path: Path, columns: Mapping[str, str], required: Sequence[str]) -> CsvTable:
    """Every row of the file, its header checked against `columns`."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise BadInput(f"{path}: {err.strerror or err}") from None
    if len(data) > MAX_FILE_BYTES:
        raise BadInput(f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it")
    try:
        decoded = decode_csv_bytes(data)
    except UndecodableText as err:
        raise BadInput(f"{path}: {err}") from None
    # newline="": a line break inside a quoted cell stays in the cell (splitlines() also
    # broke rows at U+2028 and U+0085).
    reader = csv.DictReader(
        io.StringIO(decoded.text, newline=""), delimiter=csv_delimiter(decoded.text)
    )
    header = [normal(name).lower() for name in reader.fieldnames or []]
    _check_header(path, header, columns, required)
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            cells = {
                name: normal(value) if isinstance(value, str) else ""
                for name in columns
                for value in [row.get(name)]
            }
            rows.append(CsvRow(reader.line_num, cells, None in row))
    except csv.Error as err:
        raise BadInput(f"{path}: line {reader.line_num} is not valid CSV: {err}") from None
    return CsvTable(rows, decoded.encoding)


def _check_header(
    path: Path, header: list[str], columns: Mapping[str, str], required: Sequence[str]
) -> None:
    unknown = unknown_columns(header, columns)
    if unknown:
        raise BadInput(f"{path}: {unknown}")
    missing = [column for column in required if column not in header]
    if missing:
        raise BadInput(f"{path}: missing column(s) {', '.join(missing)}")
