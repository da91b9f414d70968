"""Reading the mailbox CSV: UTF-8 only, bounded memory, each row validated (`rows`).

`read_rows` is the reading. `CsvSource` feeds `csv.reader` one line at a time from a binary
(or text) stream, and knows which line each record starts on; `bounded_fields` caps the size
of one field, `MAX_LINE_BYTES` one line and `MAX_RECORD_BYTES` one record, so a hostile file is
an error naming its line and column instead of a memory blow-up.
"""

from __future__ import annotations

import contextlib
import csv
import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from warmup_dagster.mailboxes.rows import (
    OPTIONAL_COLUMNS,
    REQUIRED_COLUMNS,
    MailboxRow,
    RowError,
    parse_row,
)

# Characters in one field (a refresh token, the longest real one, is at most 8 KiB), bytes in
# one physical line and in one record (its lines together: a quoted field may span lines). A
# text stream counts characters for the last two.
MAX_CSV_FIELD = 64 * 1024
MAX_LINE_BYTES = 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
_BOM = "\ufeff"


class SourceError(ValueError):
    """A line that is not UTF-8, or a line or record that is too long; nothing after it is read.

    Attributes:
        line: The physical line (1-based) the problem is on.
        field: What the problem is about: `encoding`, `line` or `record`.
        partial: The record's text up to the problem (the valid part of the line it is on), to
            tell which column the problem is in.
    """

    def __init__(self, line: int, field: str, message: str, partial: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.field = field
        self.partial = partial


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
        # The current record's lines (at most MAX_RECORD_BYTES) and their size.
        self._record: list[str] = []
        self._record_size = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        chunk = self._stream.readline(MAX_LINE_BYTES + 1)
        if not chunk:
            raise StopIteration
        self.lines += 1
        if len(chunk) > MAX_LINE_BYTES:
            self._starts_here()
            raise SourceError(
                self.lines,
                "line",
                f"line {self.lines} is longer than {MAX_LINE_BYTES // 1024:,} KiB; not read on",
                self.record_text() + _readable(chunk),
            )
        text = self._decode(chunk) if isinstance(chunk, bytes) else chunk
        if self.lines == 1:
            text = text.removeprefix(_BOM)
        if self._record_start is None and text.strip("\r\n"):
            self._record_start = self.lines
        if self._record_start is not None:
            self._record_size += len(chunk)
            if self._record_size > MAX_RECORD_BYTES:
                raise SourceError(
                    self.lines,
                    "record",
                    f"is longer than {MAX_RECORD_BYTES // 1024:,} KiB (lines "
                    f"{self._record_start}-{self.lines}); not read on",
                )
            self._record.append(text)
        return text

    def _decode(self, chunk: bytes) -> str:
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as exc:
            valid = chunk[: exc.start].decode("utf-8")
            self._starts_here()
            raise SourceError(
                self.lines,
                "encoding",
                f"is not UTF-8 on line {self.lines} at column {len(valid) + 1} (byte offset "
                f"{self._offset + exc.start}: {chunk[exc.start : exc.start + 4]!r}); save the "
                "file as UTF-8",
                self.record_text() + valid,
            ) from None
        self._offset += len(chunk)
        return text

    def mark(self) -> None:
        """A new record begins with the next line that is not blank."""
        self._record_start = None
        self._mark = self.lines
        self._record.clear()
        self._record_size = 0

    def _starts_here(self) -> None:
        """A line that cannot be read is not blank: a record not begun yet begins on it."""
        if self._record_start is None:
            self._record_start = self.lines

    def record_text(self) -> str:
        """The text of the record read since `mark`, so far."""
        return "".join(self._record)

    @property
    def record_start(self) -> int:
        """The line the record read since `mark` started on (the csv module skips blank lines,
        and a quoted field may span lines)."""
        return self._record_start if self._record_start is not None else self._mark + 1


def _readable(chunk: bytes | str) -> str:
    """A line cut short at the size limit, as text (a sequence cut at its end dropped)."""
    return chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk


def scan_fields(text: str, limit: int = MAX_CSV_FIELD) -> tuple[int | None, int]:
    """(the first field longer than `limit` characters, the field the text ends in), as
    0-based positions in a record's text, read as `csv.reader`'s default dialect reads it:
    commas between fields, double quotes around a field, a doubled quote inside one.

    The csv module says that a field was too long, not which; this says which, so an error can
    name its column.
    """
    index = length = 0
    state = "start"  # a field's start, unquoted, quoted, a quote seen inside quotes
    for ch in text:
        if state == "quoted":
            if ch == '"':
                state = "quote"
                continue
        elif state == "quote" and ch == '"':  # a doubled quote: one quote in the field
            state = "quoted"
        elif ch == ",":
            index, length, state = index + 1, 0, "start"
            continue
        elif ch in "\r\n":
            break  # the record ends here
        elif state == "start" and ch == '"':
            state = "quoted"
            continue
        else:
            state = "unquoted"  # a quote inside an unquoted field is its own character
        length += 1
        if length > limit:
            return index, index
    return None, index


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
    not UTF-8, a field over `MAX_CSV_FIELD` characters, a line over `MAX_LINE_BYTES`, a record
    over `MAX_RECORD_BYTES` and rows with the wrong number of fields come out as `RowError`
    lists, each naming the line its record starts on and, where one column is to blame, that
    column; duplicates inside the file are detected here too. A problem the reading cannot get
    past (bytes, sizes, malformed CSV) is the last thing yielded.
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
            yield [_unreadable(exc, source.record_start, reader.fieldnames)]
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                over, _ = scan_fields(source.record_text())
                yield [_too_long(source.record_start, reader.fieldnames, over, "not read on")]
            else:
                yield [RowError(source.record_start, "row", f"malformed CSV: {exc}")]
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


def _too_long(line: int, columns: Sequence[str], index: int | None, after: str) -> RowError:
    """A field over `MAX_CSV_FIELD`, named by its column (`row` when it is past the last)."""
    limit = f"longer than {MAX_CSV_FIELD:,} characters"
    if index is not None and index < len(columns):
        return RowError(line, columns[index], f"is {limit}; {after}")
    return RowError(line, "row", f"has a field after the last column {limit}; {after}")


def _unreadable(exc: SourceError, line: int, columns: Sequence[str] | None) -> RowError:
    """The error for a record the source stopped in, on the line the record starts on and the
    column the problem is in, as far as the record's text read so far tells."""
    columns = columns or []
    over, at = scan_fields(exc.partial)
    if exc.field == "line" and over is not None:
        return _too_long(line, columns, over, str(exc))
    if exc.field == "encoding" and at < len(columns):
        return RowError(line, columns[at], str(exc))
    return RowError(line, "row", str(exc))
