"""What every event payload shares."""

from typing import Any

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """An event payload: immutable, and strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldChange(Payload):
    """A changed field with its old and new value."""

    old: Any = None
    new: Any = None
