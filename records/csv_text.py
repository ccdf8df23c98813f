"""What a CSV file's bytes say, whichever encoding a spreadsheet saved them in.

Excel saves "CSV (Comma delimited)" in the machine's legacy code page: Shift_JIS
(cp932) on Japanese Windows, cp1252 in much of Europe; "CSV UTF-8" adds a BOM.
UTF-8 is tried first; anything else is told by `charset-normalizer` (the detector
`requests` uses), and a file it cannot tell is refused in one sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from charset_normalizer import from_bytes


class UndecodableText(ValueError):
    """The bytes are not text in any encoding we can tell."""


@dataclass(frozen=True)
class DecodedText:
    text: str
    # The encoding the bytes were read in, as Python names it ("utf_8", "cp932").
    encoding: str


def decode_csv_bytes(data: bytes) -> DecodedText:
    try:
        return DecodedText(data.decode("utf-8-sig"), "utf_8")
    except UnicodeDecodeError:
        pass
    if b"\x00" in data:
        # UTF-16 (Excel's "Unicode text") has NULs; binary files too.
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return DecodedText(data.decode("utf-16"), "utf_16")
        raise UndecodableText("the file is not text (it holds NUL bytes); save it as CSV UTF-8")
    best = from_bytes(data).best()
    if best is None:
        raise UndecodableText("the file's text encoding cannot be told; save it as CSV UTF-8")
    return DecodedText(str(best), best.encoding)
