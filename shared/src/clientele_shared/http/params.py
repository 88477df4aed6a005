"""Query parameters every service shares, bounded so no value overflows a database column."""

from typing import Annotated

from fastapi import Query

MAX_BIGINT = 2**63 - 1
"""The largest PostgreSQL bigint: a larger integer in SQL is an overflow error, not a miss."""

EntryCursor = Annotated[int, Query(ge=0, le=MAX_BIGINT, description="entries after this entry id")]
"""The `after` cursor of an audit trail (entry ids are bigint identities)."""
