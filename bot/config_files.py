"""Reading the operator's files: config/*.toml, the lexicon, the roster, classify's input lines.

All are UTF-8 text, with or without the byte-order mark Windows Notepad writes at the start; a file
that is not UTF-8 is refused naming the file (NotUtf8), whatever reads it.
"""

from __future__ import annotations

import codecs
import tomllib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

BOM = codecs.BOM_UTF8


class NotUtf8(UnicodeDecodeError):
    """A file that is not UTF-8 text, with its path (still a UnicodeDecodeError: callers catching
    that, or ValueError, keep working)."""

    def __init__(self, path: str | Path, exc: UnicodeDecodeError, offset: int = 0) -> None:
        super().__init__(exc.encoding, exc.object, exc.start, exc.end, exc.reason)
        self.path = Path(path)
        self.byte = offset + exc.start

    def __str__(self) -> str:
        return f"{self.path} is not UTF-8 text (byte {self.byte}); save it as UTF-8 (e.g. iconv -f GBK -t UTF-8)"


def decode(path: str | Path, data: bytes) -> str:
    """The text of a file's bytes, read as UTF-8 without a leading byte-order mark, line ends as
    LF (as a file opened as text reads them; Notepad writes CRLF)."""
    body = data[len(BOM):] if data.startswith(BOM) else data
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:  # the byte counted in the file, its mark included
        raise NotUtf8(path, exc, len(data) - len(body)) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: str | Path) -> str:
    """A file's text (OSError when it cannot be read, NotUtf8 when it is not UTF-8)."""
    return decode(path, Path(path).read_bytes())


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a dict (tomllib.TOMLDecodeError for a syntax error)."""
    return tomllib.loads(read_text(path))


def text_lines(path: str | Path, raw: Iterable[bytes]) -> Iterator[str]:
    """Lines of UTF-8 text from raw byte lines as they come (a byte-order mark at the start
    dropped), NotUtf8 naming path and the byte at the first line that is not UTF-8."""
    offset = 0
    for number, line in enumerate(raw):
        body = line[len(BOM):] if number == 0 and line.startswith(BOM) else line
        try:
            yield body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NotUtf8(path, exc, offset + len(line) - len(body)) from None
        offset += len(line)


def read_lines(path: str | Path) -> Iterator[str]:
    """A file's lines as text_lines reads them, the file read as they are consumed."""
    with Path(path).open("rb") as fh:
        yield from text_lines(path, fh)
