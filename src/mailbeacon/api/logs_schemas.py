"""The logs API's response models, one row model and one page model per kind, made from the store's
column list so the OpenAPI document shows exactly the fields each kind returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, create_model

from mailbeacon.store.logs import SPECS, LogKind, LogSpec


def _row_model(spec: LogSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {
        column.name: (
            (list[Any] if column.python_type is list else column.python_type) | None,
            Field(description=column.doc),
        )
        for column in spec.columns
    }
    name = f"{spec.kind.value.capitalize()}LogRow"
    return create_model(name, __doc__=spec.description, **fields)


def _page_model(spec: LogSpec) -> type[BaseModel]:
    fields: dict[str, Any] = {
        "kind": (Literal[spec.kind.value], ...),
        "rows": (list[_row_model(spec)], ...),  # type: ignore[misc]
        "next_cursor": (
            str | None,
            Field(description="Pass as `cursor` for the next page; null on the last page."),
        ),
    }
    name = f"{spec.kind.value.capitalize()}LogPage"
    return create_model(name, __doc__=f"A page of the {spec.kind.value} log, oldest first.", **fields)


PAGE_MODELS: dict[LogKind, type[BaseModel]] = {kind: _page_model(spec) for kind, spec in SPECS.items()}
