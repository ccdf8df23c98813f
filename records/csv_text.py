"""What a CSV file's bytes say, whichever encoding a spreadsheet saved them in.

Excel saves "CSV (Comma delimited)" in the machine's legacy code page: Shift_JIS
(cp932) on Japanese Windows, cp1252 in much of Europe; "CSV UTF-8" adds a BOM.
UTF-8 is tried first; anything else is told by `charset-normalizer` (the detector
`requests` uses), preferring Shift_JIS to Korean where both read cleanly, and a file it
cannot tell is refused in one sentence. Cells are
separated by commas, by tabs (Excel's "Unicode Text", UTF-16) or by semicolons (Excel
where the decimal mark is a comma); the header line tells which.

The delimiter also tells how a number's marks read (`csv_number`). Excel separates by
commas where the decimal mark is a point, so there a comma can only group thousands
("1,234.5", quoted). Semicolon and tab files come with either mark (pandas writes
points between semicolons): a lone mark with three digits after it ("1.234") reads as
1.234 or 1234, and is refused rather than guessed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from charset_normalizer import from_bytes

from models.text import shorten


class UndecodableText(ValueError):
    """The bytes are not text in any encoding we can tell."""


@dataclass(frozen=True)
class DecodedText:
    text: str
    # The encoding the bytes were read in, as Python names it ("utf_8", "cp932").
    encoding: str


# Enough of a file to tell its encoding without holding all of it.
SNIFF_BYTES = 1024 * 1024

# Unknown columns named in an error; a file with thousands says how many more.
MAX_NAMED_COLUMNS = 5

# Comma first: a header holding none of them is read as before.
DELIMITERS = (",", "\t", ";")
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_KOREAN = frozenset({"cp949", "euc_kr", "johab"})
_SHIFT_JIS = frozenset({"cp932", "shift_jis", "shift_jis_2004", "shift_jisx0213"})
# charset-normalizer's measure of mess in a decoding (0 none, 1 all): Korean text read
# as Shift_JIS scores far above this, or does not decode at all.
_LITTLE_CHAOS = 0.1


def csv_delimiter(text: str) -> str:
    """The delimiter the header line (the text's first line) uses most. Column names
    hold none of these, so a header holds only its own."""
    header = text.split("\n", 1)[0]
    return max(DELIMITERS, key=header.count)


# Digits grouped in thousands by the mark (the first group without a leading zero),
# with a fraction after the other mark.
_THOUSANDS = {
    ",": re.compile(r"[+-]?[1-9]\d{0,2}(?:,\d{3})+(?P<fraction>\.\d+)?"),
    ".": re.compile(r"[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?P<fraction>,\d+)?"),
}
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+(?:[eE][+-]?\d+)?")


def csv_number(text: str, delimiter: str) -> float:
    """A number cell of a file separated by `delimiter`, its marks read as the module
    docstring says. Raises ValueError saying what is wrong, quoting the cell."""
    value = text.strip()
    shown = repr(shorten(value))
    if delimiter == ",":
        if "," not in value:
            return _float(value, shown)
        if _THOUSANDS[","].fullmatch(value):
            return float(value.replace(",", ""))
        raise ValueError(
            f"is not a number: {shown} (in a comma-delimited file the decimal mark is a "
            "point; a comma may only separate thousands, as in 1,234.5)"
        )
    for mark in ",.":
        grouped = _THOUSANDS[mark].fullmatch(value)
        if grouped is None:
            continue
        # A decimal mark comes once, so several of one mark, or both marks, group thousands.
        if grouped["fraction"] or value.count(mark) > 1:
            return float(value.replace(mark, "").replace(",", "."))
        fraction, whole = float(value.replace(mark, ".")), float(value.replace(mark, ""))
        raise ValueError(
            f"is ambiguous: {shown} reads as {fraction:g} or as {whole:g}; write it "
            f"without a thousands separator, or as {value}0 if it is a fraction"
        )
    if _DECIMAL_COMMA.fullmatch(value):
        return float(value.replace(",", "."))
    return _float(value, shown)


def _float(value: str, shown: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"is not a number: {shown}") from None


def sniff_encoding(sample: bytes) -> str:
    """The encoding to stream a large file in, told from its first bytes. A multibyte
    character cut at the sample's end does not count against UTF-8."""
    if sample[:2] in _UTF16_BOMS:
        # Not decoded: the sample may end inside a character.
        return "utf_16"
    try:
        sample.decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError as err:
        if err.start >= len(sample) - 3 and len(sample) >= SNIFF_BYTES:
            return "utf-8-sig"
    return decode_csv_bytes(sample).encoding


def decode_csv_bytes(data: bytes) -> DecodedText:
    try:
        # A NUL in UTF-8 text is a bad cell, which the row's own checks report.
        return DecodedText(data.decode("utf-8-sig"), "utf_8")
    except UnicodeDecodeError:
        pass
    if data[:2] in _UTF16_BOMS:
        # UTF-16, Excel's "Unicode Text".
        try:
            return DecodedText(data.decode("utf-16"), "utf_16")
        except UnicodeDecodeError:
            raise UndecodableText("the file stops being UTF-16 text; save it again") from None
    _refuse_binary(data)
    candidates = from_bytes(data)
    best = candidates.best()
    if best is not None and best.encoding in _KOREAN:
        # A short file of kanji and kana is told as Korean too, whose byte ranges overlap
        # Shift_JIS's: Japanese Excel is by far the likelier writer of one here.
        best = next(
            (m for m in candidates if m.encoding in _SHIFT_JIS and m.chaos <= _LITTLE_CHAOS), best
        )
    if best is None:
        raise UndecodableText("the file's text encoding cannot be told; save it as CSV UTF-8")
    return DecodedText(str(best), best.encoding)


def _refuse_binary(data: bytes) -> None:
    # Text in the legacy encodings a spreadsheet writes has no NUL; a binary file does.
    if b"\x00" in data:
        raise UndecodableText("the file is not text (it holds NUL bytes); save it as CSV UTF-8")


def unknown_columns(header: Iterable[str], columns: Collection[str]) -> str | None:
    """What is wrong with a header naming columns outside `columns`, each with the
    closest known name (a misspelt optional column would otherwise be dropped
    silently), or None when every name is known."""
    unknown = [name for name in header if name not in columns]
    if not unknown:
        return None
    hints = []
    for name in unknown[:MAX_NAMED_COLUMNS]:
        close = difflib.get_close_matches(name, columns, n=1, cutoff=0.5)
        hint = repr(shorten(name))
        hints.append(f"{hint} (did you mean {close[0]!r}?)" if close else hint)
    if len(unknown) > MAX_NAMED_COLUMNS:
        hints.append(f"and {len(unknown) - MAX_NAMED_COLUMNS:,} more")
    return f"unknown column(s) {', '.join(hints)}; the columns are {', '.join(columns)}"
