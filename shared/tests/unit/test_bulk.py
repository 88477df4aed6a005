"""COPY records of a bulk write: every row in the first row's column order, JSONB columns as
JSON text (None kept as NULL), a table of one column's records still tuples."""

from __future__ import annotations

import uuid

import pytest
from clientele_shared.bulk import Copy
from sqlalchemy import Column, MetaData, String, Table, Uuid
from sqlalchemy.dialects.postgresql import JSONB

_meta = MetaData()
_things = Table(
    "things",
    _meta,
    Column("id", Uuid, primary_key=True),
    Column("name", String),
    Column("doc", JSONB),
    Column("tags", JSONB),
)


def test_records_follow_the_first_rows_columns_with_jsonb_as_text() -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    copy = Copy.of(
        _things,
        [
            {"id": first, "doc": {"имя": "Ромашка", "n": [1, 2]}, "name": "a", "tags": None},
            {"name": "b", "tags": ["x"], "id": second, "doc": {}},
        ],
    )
    assert copy.columns == ["id", "doc", "name", "tags"]
    assert copy.records == [
        (first, '{"имя":"Ромашка","n":[1,2]}', "a", None),
        (second, "{}", "b", '["x"]'),
    ]


def test_a_single_column_gives_tuples_and_no_rows_give_nothing() -> None:
    assert Copy.of(_things, [{"name": "a"}, {"name": None}]).records == [("a",), (None,)]
    empty = Copy.of(_things, [])
    assert (empty.columns, empty.records) == ([], [])


def test_a_row_without_a_column_of_the_first_is_refused() -> None:
    with pytest.raises(KeyError):
        Copy.of(_things, [{"id": uuid.uuid4(), "name": "a"}, {"name": "b"}])
