"""Reading the mailbox CSV: UTF-8 only, bounded memory, each row validated (`rows`).

`read_rows` is the reading. `CsvSource` feeds `csv.reader` one line at a time from a binary
(or text) stream, and knows which line each record starts on; `bounded_fields` caps the size
of one field, so a hostile file is an error naming its line instead of a memory blow-up.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from collections.abc import Iterable, Iterator
from typing import IO

from warmup_dagster.mailboxes.rows import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    MailboxRow,
    RowError,
    parse_row,
)

# Characters in one field (a refresh token, the longest real one, is at most 8 KiB) and
# bytes in one physical line.
MAX_CSV_FIELD = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024
_BOM = "\ufeff"


class SourceError(ValueError):
    """A line that is not UTF-8 or is too long; nothing after it is read.

    Attributes:
        line: The physical line (1-based) the problem is on.
        field: What the problem is about: `encoding` or `line`.
    """

    def __init__(self, line: int, field: str, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.field = field


class CsvSource:
    """An iterator of decoded lines for `csv.reader`, counting lines and bytes.

    A UTF-8 byte order mark at the very start is dropped; anything that does not decode as
    UTF-8 raises `SourceError` with its line, column and byte offset. Splitting at b"\\n" never
    cuts a UTF-8 sequence (no multibyte sequence holds the byte 0x0A), so each line decodes
    on its own.
    """

    def __init__(self, stream: IO[bytes] | IO[str]) -> None:
        self._stream = stream
        self.lines = 0  # physical lines handed out
        self._offset = 0  # bytes before the next line
        self._mark = 0
        self._record_start: int | None = None

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        chunk = self._stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            raise StopIteration
        self.lines += 1
        if len(chunk) > MAX_LINE_BYTES:
            raise SourceError(
                self.lines, "line", f"is longer than {MAX_LINE_BYTES // 1024} KiB; not read on"
            )
        text = self._decode(chunk) if isinstance(chunk, bytes) else chunk
        if self.lines == 1:
            text = text.removeprefix(_BOM)
        if self._record_start is None and text.strip("\r\n"):
            self._record_start = self.lines
        return text

    def _decode(self, chunk: bytes) -> str:
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            column = len(chunk[: exc.start].decode("utf-8")) + 1
            raise SourceError(
                self.lines,
                "encoding",
                f"is not UTF-8 at column {column} (byte offset {self._offset + exc.start}: "
                f"{chunk[exc.start : exc.start + 4]!r}); save the file as UTF-8",
            ) from None
        self._offset += len(chunk)
        return text

    def mark(self) -> None:
        """A new record begins with the next line that is not blank."""
        self._record_start = None
        self._mark = self.lines

    @property
    def record_start(self) -> int:
        """The line the record read since `mark` started on (the csv module skips blank lines,
        and a quoted field may span lines)."""
        return self._record_start if self._record_start is not None else self._mark + 1


@contextlib.contextmanager
def bounded_fields(limit: int = MAX_CSV_FIELD) -> Iterator[None]:
    """`csv.field_size_limit` for the reading only: it is the csv module's global."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def check_header(fieldnames: Iterable[str] | None) -> list[RowError]:
    """Missing required columns and unknown columns (likely typos) are errors on line 1."""
    if not fieldnames:
        return [RowError(1, "header", "the file is empty or has no header row")]
    names = [name.strip() for name in fieldnames]
    errors = [
        RowError(1, column, "required column is missing")
        for column in REQUIRED_COLUMNS
        if column not in names
    ]
    known = set(REQUIRED_COLUMNS) | set(OPTIONAL_COLUMNS)
    errors += [
        RowError(1, name or "(blank)", "unknown column") for name in names if name not in known
    ]
    errors += [
        RowError(1, name, "column appears twice") for name in set(names) if names.count(name) > 1
    ]
    return errors


def read_rows(stream: IO[bytes] | IO[str]) -> Iterator[MailboxRow | list[RowError]]:
    """Yield each data row of a mailbox CSV, validated, in file order.

    A binary stream is read as UTF-8 only (a byte order mark allowed); a text stream as it
    decodes. Header problems, a header with no rows under it, malformed CSV, bytes that are
    not UTF-8, a field over `csvsource.MAX_CSV_FIELD` characters and rows with the wrong
    number of fields come out as `RowError` lists, each naming the line its record starts on;
    duplicates inside the file are detected here too.
    """
    source = CsvSource(stream)
    with bounded_fields():
        yield from _read(source)


def _read(source: CsvSource) -> Iterator[MailboxRow | list[RowError]]:
    reader = csv.DictReader(source, restkey="\0extra", restval=None)
    try:
        header_errors = check_header(reader.fieldnames)
    except SourceError as exc:
        yield [RowError(exc.line, exc.field, str(exc))]
        return
    except csv.Error as exc:
        yield [RowError(1, "header", f"malformed CSV: {exc}")]
        return
    if header_errors:
        yield header_errors
        return
    reader.fieldnames = [name.strip() for name in reader.fieldnames or []]
    first_line_of: dict[str, int] = {}
    for rows_seen in itertools.count():
        source.mark()
        try:
            raw = next(reader)
        except StopIteration:
            if rows_seen == 0:  # an import of nothing is a mistake (a truncated export)
                yield [RowError(1, "file", "has a header row but no mailbox rows under it")]
            return
        except SourceError as exc:
            yield [RowError(exc.line, exc.field, str(exc))]
            return
        except csv.Error as exc:
            message = f"malformed CSV: {exc}"
            if "field limit" in str(exc):
                message = f"has a field longer than {MAX_CSV_FIELD:,} characters; not read on"
            yield [RowError(source.record_start, "row", message)]
            return
        # A quoted field may hold line breaks: a row is named by the line it starts on.
        line = source.record_start
        if "\0extra" in raw:
            yield [RowError(line, "row", "has more fields than the header")]
            continue
        if any(value is None for value in raw.values()):
            yield [RowError(line, "row", "has fewer fields than the header")]
            continue
        parsed = parse_row(line, raw)
        if isinstance(parsed, MailboxRow):
            first = first_line_of.setdefault(parsed.email, line)
            if first != line:
                parsed = [
                    RowError(line, "email", f"{parsed.email} already appears on line {first}")
                ]
        yield parsed
