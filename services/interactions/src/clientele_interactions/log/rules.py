"""The contact log's rules (pure: no I/O, time is passed in)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from clientele_interactions.log.schemas import (
    REQUIRED_WHEN_PRESENT,
    CompleteRequest,
    Interaction,
    InteractionDraft,
    InteractionPatch,
    NextContact,
    SuggestedNext,
)
from clientele_interactions.results.rules import ResultDefinition

Results = Mapping[tuple[str, str], ResultDefinition]
"""The result definitions by (kind, code)."""

AUDITED_FIELDS = (
    "kind",
    "direction",
    "status",
    "occurred_at",
    "due_at",
    "duration_seconds",
    "person_ids",
    "responsible_employee_id",
    "subject",
    "notes",
    "result",
    "deal_id",
    "campaign_id",
    "cancel_reason",
)


class Rejected(Exception):
    """Input that parsed but breaks a rule; ``errors`` have FastAPI's validation-error shape."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(str(error["msg"]) for error in errors))
        self.errors = errors

    @classmethod
    def field(cls, field: str, message: str) -> Rejected:
        return cls([{"loc": (field,), "msg": message, "type": "value_error"}])


class StateConflict(Exception):
    """The interaction is not in a state that allows the action (409)."""


class CounterpartyBlocked(Exception):
    """New business with a counterparty of the unwanted register (409)."""

    def __init__(self, organization_id: uuid.UUID | None, person_ids: list[uuid.UUID]) -> None:
        super().__init__(
            "The counterparty is in the unwanted counterparty register: no new planned or "
            "outgoing contact; only an inbound contact that happened may be logged."
        )
        self.organization_id = organization_id
        self.person_ids = person_ids


def refuse_blocked(
    *,
    status: str,
    direction: str,
    organization_id: uuid.UUID,
    organization_blocked: bool,
    blocked_person_ids: list[uuid.UUID],
) -> None:
    """A new contact with a blocked counterparty (organization or person) is refused, planned
    or outgoing: the company does not start business with it. A record of an inbound contact
    that happened is accepted: the log must tell what happened (the security officer reads it)."""
    if status == "done" and direction == "in":
        return
    if organization_blocked or blocked_person_ids:
        raise CounterpartyBlocked(
            organization_id if organization_blocked else None, blocked_person_ids
        )


def check_result(kind: str, code: str | None, results: Results, *, field: str = "result") -> None:
    """A result must be defined and active for the interaction's kind."""
    if code is None:
        return
    definition = results.get((kind, code))
    if definition is None or not definition.active:
        allowed = sorted(c for (k, c), d in results.items() if k == kind and d.active)
        raise Rejected.field(field, f"unknown result {code!r} for a {kind}; one of {allowed}")


def check_draft(draft: InteractionDraft, results: Results) -> None:
    check_result(draft.kind, draft.result, results)


def occurred_or_now(value: datetime | None, now: datetime) -> datetime:
    return value if value is not None else now


def creation_values(draft: InteractionDraft, now: datetime) -> dict[str, Any]:
    """Column values of a new interaction from a draft (``next`` is handled separately)."""
    values = draft.model_dump(exclude={"next"})
    if draft.status == "done":
        values["occurred_at"] = occurred_or_now(draft.occurred_at, now)
    return values


def next_contact_values(
    previous: Mapping[str, Any], following: NextContact, now: datetime
) -> dict[str, Any]:
    """The planned contact following ``previous`` (its column values), or Rejected."""
    responsible = following.responsible_employee_id or previous.get("responsible_employee_id")
    if responsible is None:
        raise Rejected.field(
            "next.responsible_employee_id",
            "the next contact needs a responsible employee (none on this interaction)",
        )
    if following.due_at <= now:
        raise Rejected.field("next.due_at", "the next contact must be due in the future")
    subject = following.subject or _follow_up_subject(str(previous["subject"]))
    return {
        "organization_id": previous["organization_id"],
        "kind": following.kind or previous["kind"],
        "direction": following.direction,
        "status": "planned",
        "occurred_at": None,
        "due_at": following.due_at,
        "duration_seconds": following.duration_seconds,
        "person_ids": list(
            following.person_ids if following.person_ids is not None else previous["person_ids"]
        ),
        "responsible_employee_id": responsible,
        "subject": subject,
        "notes": following.notes,
        "result": None,
        "deal_id": previous.get("deal_id"),
        "campaign_id": previous.get("campaign_id"),
        "follows_id": previous["id"],
    }


_FOLLOW_UP = re.compile(r"^(?:Follow-up: )+")


def _follow_up_subject(subject: str) -> str:
    return ("Follow-up: " + _FOLLOW_UP.sub("", subject))[:500]


def suggest_next(
    interaction: Interaction, results: Results, *, now: datetime
) -> SuggestedNext | None:
    """The follow-up a result suggests (its ``follow_up_days``), for the response to offer."""
    if interaction.status != "done" or interaction.result is None:
        return None
    definition = results.get((interaction.kind, interaction.result))
    if definition is None or definition.follow_up_days is None:
        return None
    base = interaction.occurred_at or now
    days = definition.follow_up_days
    due = max(base, now) + (timedelta(days=days) if days else timedelta(hours=1))
    return SuggestedNext(
        kind=interaction.kind,
        due_at=due,
        responsible_employee_id=interaction.responsible_employee_id,
        subject=_follow_up_subject(interaction.subject),
        person_ids=interaction.person_ids,
    )


@dataclass(frozen=True)
class PatchOutcome:
    values: dict[str, Any]
    """Columns to write (only those that change)."""
    changes: dict[str, dict[str, Any]]
    """{field: {"old": ..., "new": ...}} in JSON form, for the audit trail and the event."""
    rescheduled_from: datetime | None
    """The previous due time when a planned contact's due time moved."""


def apply_patch(
    current: Interaction, patch: InteractionPatch, results: Results, *, now: datetime
) -> PatchOutcome:
    """Check a merge patch against the interaction's state and compute what changes."""
    present = patch.model_fields_set
    errors: list[dict[str, Any]] = []
    for name in REQUIRED_WHEN_PRESENT:
        if name in present and getattr(patch, name) is None:
            errors.append({"loc": (name,), "msg": "may not be null", "type": "value_error"})
    if current.status == "cancelled":
        raise StateConflict("A cancelled interaction cannot be changed.")
    if current.status == "planned":
        for name in ("occurred_at", "result"):
            if name in present and getattr(patch, name) is not None:
                msg = f"a planned interaction takes no {name}: complete it instead"
                errors.append({"loc": (name,), "msg": msg, "type": "value_error"})
        if "due_at" in present and patch.due_at is None:
            msg = "a planned interaction needs due_at"
            errors.append({"loc": ("due_at",), "msg": msg, "type": "value_error"})
        if "responsible_employee_id" in present and patch.responsible_employee_id is None:
            msg = "a planned interaction needs a responsible employee"
            errors.append({"loc": ("responsible_employee_id",), "msg": msg, "type": "value_error"})
    else:
        if "due_at" in present:
            msg = "only a planned interaction has a due time"
            errors.append({"loc": ("due_at",), "msg": msg, "type": "value_error"})
        if "occurred_at" in present and patch.occurred_at is None:
            msg = "an interaction that happened needs occurred_at"
            errors.append({"loc": ("occurred_at",), "msg": msg, "type": "value_error"})
        elif "occurred_at" in present and in_the_future(patch.occurred_at, now):
            errors.append({"loc": ("occurred_at",), "msg": FUTURE, "type": "value_error"})
    if errors:
        raise Rejected(errors)

    old = current.model_dump(mode="json")
    wanted = {name: getattr(patch, name) for name in present}
    kind = wanted.get("kind", current.kind)
    result = wanted.get("result", current.result)
    if "kind" in wanted or "result" in wanted:
        check_result(kind, result, results)
    new = current.model_copy(update=wanted)
    new_json = new.model_dump(mode="json")
    changes = {
        name: {"old": old[name], "new": new_json[name]}
        for name in sorted(present)
        if old[name] != new_json[name]
    }
    values = {name: getattr(new, name) for name in changes}
    rescheduled_from = None
    if "due_at" in changes and current.due_at is not None:
        rescheduled_from = current.due_at
        if new.due_at is not None and new.due_at > now:
            values["overdue_at"] = None  # a new due time may become overdue once more
    return PatchOutcome(values, changes, rescheduled_from)


def completion_values(
    current: Interaction, request: CompleteRequest, results: Results, *, now: datetime
) -> dict[str, Any]:
    """The columns completing a planned contact writes."""
    if current.status != "planned":
        raise StateConflict(
            f"Only a planned interaction can be completed (this one is {current.status})."
        )
    check_result(current.kind, request.result, results)
    occurred = occurred_or_now(request.occurred_at, now)
    if in_the_future(occurred, now):
        raise Rejected.field("occurred_at", FUTURE)
    values: dict[str, Any] = {"status": "done", "occurred_at": occurred, "result": request.result}
    if request.duration_seconds is not None:
        values["duration_seconds"] = request.duration_seconds
    if request.notes is not None:
        values["notes"] = request.notes
    if request.person_ids is not None:
        values["person_ids"] = request.person_ids
    return values


def changes_of(current: Interaction, values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Audit changes of writing ``values`` over ``current``."""
    old = current.model_dump(mode="json")
    new = current.model_copy(update=dict(values)).model_dump(mode="json")
    return {
        name: {"old": old[name], "new": new[name]}
        for name in values
        if name in old and old[name] != new[name]
    }


def created_changes(interaction: Interaction) -> dict[str, dict[str, Any]]:
    data = interaction.model_dump(mode="json")
    return {
        name: {"old": None, "new": data[name]}
        for name in AUDITED_FIELDS
        if data.get(name) not in (None, [], "")
    }


FUTURE = "an interaction cannot have happened in the future"
CLOCK_SKEW = timedelta(minutes=5)
"""How far ahead of the server's clock a time that happened may be (clients' clocks drift)."""


def in_the_future(value: datetime | None, now: datetime) -> bool:
    return value is not None and value > now + CLOCK_SKEW


def check_log_time(draft: InteractionDraft, now: datetime) -> None:
    """An interaction that happened is not in the future (a change of its time is held to the
    same rule); a planned one may be due any time (one planned in the past is overdue at once)."""
    if draft.status == "done" and in_the_future(draft.occurred_at, now):
        raise Rejected.field("occurred_at", FUTURE)


# --- reminders and overdue -------------------------------------------------------------------


def reminder_time(due_at: datetime, lead: timedelta, now: datetime) -> datetime | None:
    """When to remind the responsible employee of a contact due at ``due_at``.

    ``lead`` before the due time; at once when that moment has passed but the due time has not;
    no reminder for a contact already due (the overdue notice covers it).
    """
    if due_at <= now:
        return None
    return max(due_at - lead, now)


def is_overdue(status: str, due_at: datetime | None, now: datetime) -> bool:
    return status == "planned" and due_at is not None and due_at <= now


def reminder_id(interaction_id: uuid.UUID) -> uuid.UUID:
    """One reminder per planned contact: rescheduling replaces it, completing cancels it."""
    return uuid.uuid5(interaction_id, "reminder")


def overdue_key(interaction_id: uuid.UUID, due_at: datetime) -> str:
    """The notifier's idempotency key of one overdue notice (one per due time)."""
    return f"overdue:{interaction_id}:{due_at.isoformat()}"
