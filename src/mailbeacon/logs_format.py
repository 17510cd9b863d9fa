"""Log rows as text: JSON (one object per row, for pages and JSON Lines) and CSV with a header row.

The store gives times as ISO 8601 text already; in CSV booleans are ``true``/``false``, lists JSON text
and null an empty cell.
"""

from __future__ import annotations

import csv
import enum
import functools
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mailbeacon.store.logs import LogSpec


class ExportFormat(enum.StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


MEDIA_TYPES = {ExportFormat.JSONL: "application/x-ndjson", ExportFormat.CSV: "text/csv; charset=utf-8"}


_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


@functools.lru_cache(maxsize=4096)
def _cached_json(value: tuple[Any, ...]) -> str:
    return _JSON.encode(value)


def _json_cell(value: Any) -> str:
    # Tags come as tuples, the same few for millions of rows; other lists (DMARC results) are rare.
    return _cached_json(value) if type(value) is tuple else _JSON.encode(value)


def json_rows(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(names, row, strict=True)) for row in rows]


def json_text(value: object) -> str:
    return _JSON.encode(value)


def _jsonl_batch(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    encode = _JSON.encode
    return "".join([encode(dict(zip(names, row, strict=True))) + "\n" for row in rows])


class _CsvBatch:
    """Renders batches of one kind's rows; only the columns that need it are converted."""

    def __init__(self, spec: LogSpec) -> None:
        types = [c.python_type for c in spec.columns]
        self.flags = [i for i, t in enumerate(types) if t is bool]
        self.lists = [i for i, t in enumerate(types) if t is list]
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\n")

    def header(self, names: Sequence[str]) -> str:
        self.writer.writerow(names)
        return self._take()

    def render(self, rows: Sequence[Sequence[Any]]) -> str:
        flags, lists = self.flags, self.lists
        out = []
        for row in rows:
            values = list(row)
            for i in flags:
                if values[i] is not None:
                    values[i] = "true" if values[i] else "false"
            for i in lists:
                if values[i] is not None:
                    values[i] = _json_cell(values[i])
            out.append(values)
        self.writer.writerows(out)
        return self._take()

    def _take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


def encode(fmt: ExportFormat, spec: LogSpec, batches: Iterable[Sequence[Sequence[Any]]]) -> Iterator[str]:
    """The text of every batch, one piece each (the CSV header first)."""
    names = spec.names
    if fmt is ExportFormat.JSONL:
        for rows in batches:
            yield _jsonl_batch(names, rows)
        return
    renderer = _CsvBatch(spec)
    yield renderer.header(names)
    for rows in batches:
        yield renderer.render(rows)
