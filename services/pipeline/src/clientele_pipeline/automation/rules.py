"""What an automation rule is (its JSON Schema is published), which deal events trigger it, how
its conditions evaluate (CEL, ADR 25) and what its actions change (no I/O)."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from calendar import isleap
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from functools import lru_cache
from typing import Annotated, Any, Literal

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel
from clientele_shared.events.schemas.notifications import EndpointName
from clientele_shared.templating import MessageTemplate, TemplateInvalid
from clientele_shared.values import ClockTime, Label, Labels, Note, Title
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from clientele_pipeline.automation.calendar import (
    BusinessCalendar,
    CalendarDay,
    CalendarSettings,
    Delay,
)
from clientele_pipeline.automation.mailing_trigger import MailingResult
from clientele_pipeline.deals.rules import Deal

MAX_DEPTH = 5
"""How deeply condition groups nest."""

MAX_CHAIN = 8
"""Rule firings one causation chain may hold before the next is stopped as a loop."""

FieldName = Annotated[
    str,
    Field(
        pattern=r"^(title|amount|currency|responsible_employee_id|expected_close_date|"
        r"primary_person_id|custom_fields\.[A-Za-z0-9_]{1,100}|source\.[a-z_]{1,20})$",
        description="a deal field, `custom_fields.<name>` or `source.<name>`",
    ),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DealCreated(_Strict):
    kind: Literal["deal_created"]


class StageEntered(_Strict):
    kind: Literal["stage_entered"]
    stage_id: uuid.UUID | None = Field(default=None, description="any stage when absent")


class StageLeft(_Strict):
    kind: Literal["stage_left"]
    stage_id: uuid.UUID | None = Field(default=None, description="any stage when absent")


class FieldChanged(_Strict):
    """`any`: any change; `to`: changed to `to`; `from_to`: changed from `from` to `to`."""

    kind: Literal["field_changed"]
    field: FieldName
    match: Literal["any", "to", "from_to"] = "any"
    from_: Any = Field(default=None, alias="from")
    to: Any = None

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class TagAdded(_Strict):
    kind: Literal["tag_added"]
    tag: Label | None = Field(default=None, description="any tag when absent")


class TagRemoved(_Strict):
    kind: Literal["tag_removed"]
    tag: Label | None = Field(default=None, description="any tag when absent")


BIRTHDAY = "contact.birthday"
"""The date field of the deal's primary contact person's birthday (each year)."""

DateFieldName = Annotated[
    str,
    Field(
        pattern=r"^(expected_close_date|contact\.birthday|custom_fields\.[A-Za-z0-9_]{1,100})$",
        description="`expected_close_date`, a custom field holding an ISO date, or "
        "`contact.birthday`: the birthday of the deal's primary contact person, every year, "
        "for open deals only (29 February: 28 February in a year without it)",
    ),
]


class DateReached(_Strict):
    """`offset_days` before (negative) or after a deal's date, at a local time of the deal's
    business calendar; recalculated whenever the date changes. On `contact.birthday` it fires
    once a year per deal for its primary contact's next birthday."""

    kind: Literal["date_reached"]
    field: DateFieldName
    offset_days: int = Field(default=0, ge=-366, le=366)
    at: ClockTime = Field(default=clock(9, 0), description="local time of the deal's calendar")


class NoActivity(_Strict):
    """No event of the deal (a change, a move) for `days` calendar or working days."""

    kind: Literal["no_activity"]
    days: int = Field(ge=1, le=366)
    working_days: bool = False


WATCHED = ("date_reached", "no_activity")
"""Triggers that fire on time passing rather than on an event (``automation_watches``)."""


class InteractionWith(_Strict):
    """A contact with the deal was logged, or a planned one completed (interactions'
    events), optionally of a kind, direction and with exactly a given result."""

    kind: Literal["interaction_logged"]
    interaction_kind: Literal["call", "email", "meeting", "message", "other"] | None = None
    direction: Literal["in", "out"] | None = None
    result: str | None = Field(default=None, min_length=1, max_length=2000)


class DeliveryOutcome(_Strict):
    """A notification a rule sent for the deal was delivered, failed or bounced (the
    notifier's delivery results of the pipeline's own requests)."""

    kind: Literal["delivery_result"]
    outcome: Literal["succeeded", "failed", "bounced"] | None = None
    channel: Literal["email", "inapp", "webhook", "sms", "telegram"] | None = None


class InboundWebhook(_Strict):
    """A signed call of `POST /v1/public/automation/hooks/{rule_id}` (the rule's own secret,
    issued by `POST /v1/automation/rules/{id}/webhook-secret`) naming a deal."""

    kind: Literal["inbound_webhook"]


class TaskDone(_Strict):
    """A task about the deal was completed (optionally with exactly this result)."""

    kind: Literal["task_completed"]
    result: str | None = Field(default=None, min_length=1, max_length=2000)


class TaskOverdue(_Strict):
    """An open task about the deal passed its deadline."""

    kind: Literal["task_overdue"]


class PaymentReceived(_Strict):
    """The ERP reported a payment for the deal (`pipeline.deal.payment_received`)."""

    kind: Literal["payment_received"]
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class InvoiceReceived(_Strict):
    """The ERP reported an invoice issued for the deal (`pipeline.deal.invoice_received`)."""

    kind: Literal["invoice_received"]
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")


class Manual(_Strict):
    """Fired only by `POST /v1/automation/rules/{id}/run` for a deal."""

    kind: Literal["manual"]


Trigger = Annotated[
    DealCreated
    | StageEntered
    | StageLeft
    | FieldChanged
    | TagAdded
    | TagRemoved
    | DateReached
    | NoActivity
    | InteractionWith
    | DeliveryOutcome
    | InboundWebhook
    | TaskDone
    | TaskOverdue
    | PaymentReceived
    | InvoiceReceived
    | MailingResult
    | Manual,
    Field(discriminator="kind"),
]


@lru_cache(maxsize=4096)
def compiled(expression: str) -> Any:
    """A CEL program (compiled once per expression); raises ``celpy.CELParseError``."""
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def _valid_template(value: str) -> str:
    """A title or subject template that compiles (a validator of the actions that have one)."""
    try:
        title_template(value)
    except TemplateInvalid as exc:
        raise ValueError(f"not a valid template: {exc}") from None
    return value


class Check(_Strict):
    """One condition: a CEL expression over `deal` and `event` (e.g. `deal.amount >= 1000.0`,
    `"vip" in deal.tags`, `deal.source.channel == "web"`, `event.new == "B"`)."""

    cel: str = Field(min_length=1, max_length=2000)
    label: Label | None = None

    @field_validator("cel")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            compiled(value)
        except Exception as exc:
            raise ValueError(f"not a CEL expression: {exc}") from None
        return value


class Group(_Strict):
    """All (AND) or any (OR) of its conditions and nested groups."""

    all: list[Check | Group] | None = Field(default=None, min_length=1, max_length=50)
    any: list[Check | Group] | None = Field(default=None, min_length=1, max_length=50)

    @model_validator(mode="after")
    def _one(self) -> Group:
        if (self.all is None) == (self.any is None):
            raise ValueError("a group has exactly one of `all` or `any`")
        if self.depth() > MAX_DEPTH:
            raise ValueError(f"groups nest at most {MAX_DEPTH} deep")
        return self

    def depth(self) -> int:
        members = self.all if self.all is not None else self.any or []
        return 1 + max((m.depth() for m in members if isinstance(m, Group)), default=0)


class _Action(_Strict):
    delay_seconds: int = Field(
        default=0,
        ge=0,
        le=31_622_400,
        description="run this long after the firing (its conditions checked again then)",
    )
    delay: Delay | None = Field(
        default=None,
        description="run after this delay, in calendar time or working hours or days of the "
        "deal's business calendar (instead of `delay_seconds`)",
    )
    at_working_time: bool = Field(
        default=False,
        description="run at the next working-hours time (after the delay, if any)",
    )

    @model_validator(mode="after")
    def _one_delay(self) -> _Action:
        if self.delay_seconds and self.delay is not None:
            raise ValueError("either `delay_seconds` or `delay`, not both")
        return self

    def waits(self) -> bool:
        """Whether the action is scheduled rather than run in the firing."""
        return bool(self.delay_seconds or self.delay or self.at_working_time)

    def due(self, calendar: BusinessCalendar, moment: datetime) -> datetime:
        """When the action is due if fired at ``moment``."""
        delay = self.delay
        if self.delay_seconds:
            delay = Delay(amount=self.delay_seconds // 60, unit="minutes")
            moment += timedelta(seconds=self.delay_seconds % 60)
        return calendar.due(moment, delay, at_working_time=self.at_working_time)


class SetField(_Action):
    kind: Literal["set_field"]
    field: FieldName
    value: Any = None


class AddTags(_Action):
    kind: Literal["add_tags"]
    tags: Labels = Field(min_length=1)


class RemoveTags(_Action):
    kind: Literal["remove_tags"]
    tags: Labels = Field(min_length=1)


class SetResponsible(_Action):
    kind: Literal["set_responsible"]
    employee_id: uuid.UUID


class MoveToStage(_Action):
    kind: Literal["move_to_stage"]
    stage_id: uuid.UUID
    reason: Note | None = None
    lost_reason: Label | None = None


class Notify(_Action):
    """An in-app notification or an e-mail to the deal's responsible employee (the notifier);
    `subject` and `text` are sandboxed templates over `deal` and `employee` (`name`, `email`),
    checked when the rule is saved (ADR 37)."""

    kind: Literal["notify"]
    channel: Literal["inapp", "email"] = "inapp"
    subject: Title
    text: str = Field(min_length=1, max_length=20_000)

    @model_validator(mode="after")
    def _templates(self) -> Notify:
        try:
            self.template()
        except TemplateInvalid as exc:
            raise ValueError(f"not a valid template: {exc}") from None
        return self

    def template(self) -> MessageTemplate:
        return message_template(self.subject, self.text)


@lru_cache(maxsize=1024)
def message_template(subject: str, text: str) -> MessageTemplate:
    return MessageTemplate(
        subject=subject,
        html=None,
        text=text,
        variables={"deal": None, "employee": ("name", "email")},
    )


class Webhook(_Action):
    """A call of one of the notifier's signed webhook endpoints with the deal."""

    kind: Literal["webhook"]
    endpoint: EndpointName
    subject: Title = "deal automation"


class Assignee(_Strict):
    """Who gets a task: the deal's responsible employee, a named one, or the next active
    employee of the deal's directions in turn (round-robin per rule)."""

    rule: Literal["responsible", "employee", "round_robin"] = "responsible"
    employee_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _named(self) -> Assignee:
        if (self.rule == "employee") != (self.employee_id is not None):
            raise ValueError("`employee_id` names the employee exactly when `rule` is `employee`")
        return self


class CreateTask(_Action):
    """A task about the deal (`title`: a template over `deal`), its deadline a delay from
    the action's run in calendar or working time of the deal's business calendar."""

    kind: Literal["create_task"]
    title: Title
    description: str | None = Field(default=None, max_length=20_000)
    assignee: Assignee = Field(default_factory=Assignee)
    deadline: Delay = Field(default_factory=lambda: Delay(amount=1, unit="working_days"))
    priority: Literal["low", "normal", "high", "urgent"] = "normal"

    _template = field_validator("title")(_valid_template)


class CreateDeal(_Action):
    """A deal for the same client in another pipeline (its first open stage unless
    `stage_id`; `title`: a template over `deal`), with the deal's amount, currency,
    responsible employee and contact persons when `copy_fields`."""

    kind: Literal["create_deal"]
    pipeline_id: uuid.UUID
    stage_id: uuid.UUID | None = None
    title: Title
    copy_fields: bool = True
    tags: Labels = Field(default_factory=list)

    _template = field_validator("title")(_valid_template)


class ScheduleInteraction(_Action):
    """A planned contact with the deal's client (and its primary contact person) for the
    deal's responsible employee, created in the interactions service: `channel` the contact's
    kind, `subject` a template over `deal`, due `due_in_working_days` working days after the
    step runs (0: the next working-hours time), at working time of the deal's business
    calendar. Always run by the scheduler, never inside the triggering event's transaction;
    an unavailable interactions service is retried with back-off under the same
    Idempotency-Key (the firing and the step: one interaction however often it is sent)."""

    kind: Literal["schedule_interaction"]
    channel: Literal["call", "email", "meeting", "message", "other"] = Field(
        default="call", description="the planned contact's kind"
    )
    subject: Title = Field(description="a template over `deal`, e.g. `Звонок: {{ deal.title }}`")
    notes: str | None = Field(default=None, max_length=20_000)
    due_in_working_days: int = Field(
        default=1,
        ge=0,
        le=250,
        description="working days of the deal's business calendar from the step's run to the "
        "contact's due time (at working time; 0: the next working-hours time)",
    )

    _template = field_validator("subject")(_valid_template)

    def waits(self) -> bool:
        return True


def title_template(source: str) -> MessageTemplate:
    """A task title as a sandboxed template over the deal (`{{ deal.title }}`)."""
    return MessageTemplate(subject=source, html=None, text=source, variables={"deal": None})


Action = Annotated[
    SetField
    | AddTags
    | RemoveTags
    | SetResponsible
    | MoveToStage
    | Notify
    | Webhook
    | CreateTask
    | CreateDeal
    | ScheduleInteraction,
    Field(discriminator="kind"),
]


class RuleDefinition(_Strict):
    """What a rule does: when (trigger), if (conditions), what (actions, in order)."""

    name: Title
    stage_id: uuid.UUID | None = Field(
        default=None, description="only deals in this stage of the pipeline (any when absent)"
    )
    enabled: bool = True
    trigger: Trigger
    conditions: Group | None = None
    actions: list[Action] = Field(min_length=1, max_length=20)


class RuleDraft(RuleDefinition):
    pipeline_id: uuid.UUID


class RulePatch(_Strict):
    """A JSON merge patch of a rule's definition (a new version)."""

    name: Any = None
    stage_id: Any = None
    enabled: Any = None
    trigger: Any = None
    conditions: Any = None
    actions: Any = None


def patched(current: RuleDefinition, patch: RulePatch) -> RuleDefinition:
    """The definition after a merge patch; raises ``pydantic.ValidationError`` when invalid."""
    values = current.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name in patch.model_fields_set:
        value = getattr(patch, name)
        if value is None:
            values.pop(name, None)
        else:
            values[name] = value
    return RuleDefinition.model_validate(values)


class Rule(RuleDefinition):
    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    pipeline_id: uuid.UUID
    version: int
    author_subject: str = Field(description="whose directions the rule acts within")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    def in_force_at(self, moment: datetime) -> bool:
        """A rule fires only on events that happened after it was created (a consumer lagging
        behind, or replaying the topic, never applies a new rule to the past)."""
        return self.created_at <= moment

    def definition(self) -> RuleDefinition:
        return RuleDefinition.model_validate(
            self.model_dump(include=set(RuleDefinition.model_fields))
        )


# --- triggers --------------------------------------------------------------------------------


class Occurrence(BaseModel):
    """What happened to a deal, as triggers see it: the event's type and facts."""

    event_id: uuid.UUID
    kind: str
    deal_id: uuid.UUID
    facts: dict[str, Any] = Field(default_factory=dict)


def _field_value(values: dict[str, Any], name: str) -> Any:
    head, _, rest = name.partition(".")
    value = values.get(head)
    if rest:
        return value.get(rest) if isinstance(value, dict) else None
    return value


def occurrences(event_type: str, event_id: uuid.UUID, payload: dict[str, Any]) -> list[Occurrence]:
    """The trigger-relevant facts of a deal event (none for the events no trigger watches)."""
    deal_id = uuid.UUID(str(payload["deal_id"]))
    base = {"event_id": event_id, "deal_id": deal_id}
    if event_type == "pipeline.deal.created":
        return [Occurrence(**base, kind="deal_created", facts={"stage_id": payload["stage_id"]})]
    if event_type == "pipeline.deal.stage_changed":
        facts = {"from_stage_id": payload["from_stage_id"], "to_stage_id": payload["to_stage_id"]}
        return [
            Occurrence(**base, kind="stage_left", facts=facts),
            Occurrence(**base, kind="stage_entered", facts=facts),
        ]
    if event_type == "pipeline.deal.payment_received":
        facts = {
            name: payload.get(name)
            for name in ("document_id", "invoice_id", "number", "date", "currency")
        }
        facts["amount"] = str(payload["amount"])
        return [Occurrence(**base, kind="payment_received", facts=facts)]
    if event_type == "pipeline.deal.invoice_received":
        facts = {name: payload.get(name) for name in ("document_id", "number", "date", "currency")}
        facts["due_date"] = payload.get("due_date")
        facts["amount"] = str(payload["amount"])
        return [Occurrence(**base, kind="invoice_received", facts=facts)]
    if event_type == "pipeline.deal.changed":
        changes = payload.get("changes", {})
        old = {name: change.get("old") for name, change in changes.items()}
        new = {name: change.get("new") for name, change in changes.items()}
        found = [Occurrence(**base, kind="field_changed", facts={"old": old, "new": new})]
        if "tags" in changes:
            before, after = set(old["tags"] or []), set(new["tags"] or [])
            found += [
                Occurrence(**base, kind="tag_added", facts={"tag": tag})
                for tag in sorted(after - before)
            ]
            found += [
                Occurrence(**base, kind="tag_removed", facts={"tag": tag})
                for tag in sorted(before - after)
            ]
        return found
    return []


INTERACTION_TYPES = ("interactions.interaction.logged", "interactions.interaction.completed")


def interaction_occurrences(
    event_type: str, event_id: uuid.UUID, payload: dict[str, Any]
) -> list[Occurrence]:
    """An interaction with a deal that happened (logged, or a planned one completed)."""
    if event_type not in INTERACTION_TYPES or payload.get("deal_id") is None:
        return []
    facts = {
        "interaction_id": payload["interaction_id"],
        "interaction_kind": payload["kind"],
        "direction": payload["direction"],
        "result": payload.get("result"),
        "subject": payload["subject"],
        "responsible_employee_id": payload.get("responsible_employee_id"),
    }
    deal_id = uuid.UUID(str(payload["deal_id"]))
    return [Occurrence(event_id=event_id, kind="interaction_logged", deal_id=deal_id, facts=facts)]


RETRY_BACKOFF_SECONDS = (30, 120, 600, 3600)
"""How long a rule's e-mail or webhook whose delivery failed, or a call of a service that was
unavailable, waits before its 2nd, 3rd, 4th and 5th attempt (then the step has failed for
good)."""


def request_key(firing_id: uuid.UUID, position: int, attempt: int) -> str:
    """The idempotency key of a rule's notifier request (a retry is a new request)."""
    key = f"automation:{firing_id}:{position}"
    return key if attempt <= 1 else f"{key}:{attempt}"


def task_occurrences(
    event_type: str, event_id: uuid.UUID, payload: dict[str, Any]
) -> list[Occurrence]:
    """A task about a deal completed or overdue (the pipeline's task events)."""
    kind = {
        "pipeline.task.completed": "task_completed",
        "pipeline.task.overdue": "task_overdue",
    }.get(event_type)
    if kind is None or payload.get("deal_id") is None:
        return []
    facts = {
        "task_id": payload["task_id"],
        "assignee_employee_id": payload.get("assignee_employee_id"),
        "result": payload.get("result"),
        "overdue": payload.get("overdue", kind == "task_overdue"),
        "title": payload.get("title"),
    }
    deal_id = uuid.UUID(str(payload["deal_id"]))
    return [Occurrence(event_id=event_id, kind=kind, deal_id=deal_id, facts=facts)]


def automation_request(idempotency_key: str) -> tuple[uuid.UUID, int, int] | None:
    """The firing, step and attempt of a notifier request a rule made (its key)."""
    parts = idempotency_key.split(":")
    if len(parts) not in (3, 4) or parts[0] != "automation":
        return None
    try:
        attempt = int(parts[3]) if len(parts) == 4 else 1
        return uuid.UUID(parts[1]), int(parts[2]), attempt
    except ValueError:
        return None


def delivery_occurrence(
    event_type: str, event_id: uuid.UUID, payload: dict[str, Any], deal_id: uuid.UUID
) -> Occurrence:
    facts = {
        "outcome": event_type.rsplit(".", 1)[-1],
        "channel": payload["channel"],
        "recipient": payload["recipient"],
        "reason": payload.get("reason"),
        "attempts": payload["attempts"],
    }
    return Occurrence(event_id=event_id, kind="delivery_result", deal_id=deal_id, facts=facts)


class RuleIndex:
    """A pipeline's rules by what their triggers listen to, so that an event is matched
    against the few rules it can fire rather than all of them (2,000 rules of one pipeline
    took 2,000 trigger checks per event): by trigger kind, and a `field_changed` rule with a
    text `to` by its field and that value."""

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self._by_kind: dict[str, list[int]] = {}
        self._by_value: dict[str, dict[str, list[int]]] = {}
        self.watching = any(rule.trigger.kind in WATCHED for rule in rules)
        """Whether a rule watches time passing (the deals' watches to re-time on events)."""
        for position, rule in enumerate(rules):
            trigger = rule.trigger
            if (
                isinstance(trigger, FieldChanged)
                and trigger.match != "any"
                and isinstance(trigger.to, str)
            ):
                values = self._by_value.setdefault(trigger.field, {})
                values.setdefault(trigger.to, []).append(position)
            else:
                self._by_kind.setdefault(trigger.kind, []).append(position)

    def candidates(self, occurrences: list[Occurrence]) -> list[Rule]:
        """The rules, in their order, whose trigger one of the occurrences may match (a
        superset: ``triggered`` decides)."""
        found: set[int] = set()
        for occurrence in occurrences:
            found.update(self._by_kind.get(occurrence.kind, ()))
            if occurrence.kind == "field_changed":
                for name, values in self._by_value.items():
                    if name.partition(".")[0] not in occurrence.facts["new"]:
                        continue
                    value = _field_value(occurrence.facts["new"], name)
                    if isinstance(value, str):
                        found.update(values.get(value, ()))
        return [self.rules[position] for position in sorted(found)]


def triggered(trigger: Any, occurrence: Occurrence) -> dict[str, Any] | None:
    """The event as the rule's conditions see it if ``trigger`` matches, else None."""
    facts = occurrence.facts
    if trigger.kind != occurrence.kind:
        return None
    if isinstance(trigger, StageEntered | StageLeft):
        key = "to_stage_id" if isinstance(trigger, StageEntered) else "from_stage_id"
        if trigger.stage_id is not None and str(trigger.stage_id) != facts[key]:
            return None
        return {"kind": trigger.kind, **facts}
    if isinstance(trigger, FieldChanged):
        head = trigger.field.partition(".")[0]
        if head not in facts["new"]:
            return None
        old, new = (
            _field_value(facts["old"], trigger.field),
            _field_value(facts["new"], trigger.field),
        )
        if old == new:
            return None
        if trigger.match in ("to", "from_to") and new != trigger.to:
            return None
        if trigger.match == "from_to" and old != trigger.from_:
            return None
        return {"kind": trigger.kind, "field": trigger.field, "old": old, "new": new}
    if isinstance(trigger, InteractionWith):
        wanted = {
            "interaction_kind": trigger.interaction_kind,
            "direction": trigger.direction,
            "result": trigger.result,
        }
        if any(value is not None and facts[name] != value for name, value in wanted.items()):
            return None
    if isinstance(trigger, TaskDone) and trigger.result not in (None, facts["result"]):
        return None
    if isinstance(trigger, PaymentReceived | InvoiceReceived) and trigger.currency not in (
        None,
        facts["currency"],
    ):
        return None
    if isinstance(trigger, MailingResult) and not trigger.matches(facts):
        return None
    if isinstance(trigger, DeliveryOutcome):
        wanted = {"outcome": trigger.outcome, "channel": trigger.channel}
        if any(value is not None and facts[name] != value for name, value in wanted.items()):
            return None
    if isinstance(trigger, TagAdded | TagRemoved):
        if trigger.tag is not None and trigger.tag != facts["tag"]:
            return None
        return {"kind": trigger.kind, "tag": facts["tag"]}
    return {"kind": trigger.kind, **facts}


def date_of(value: Any) -> date | None:
    """An ISO date (or the date of an ISO date-time) held by a field; None otherwise."""
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def anniversary(birthday: date, year: int) -> date:
    """The birthday in ``year``: 29 February falls on 28 February in a year without it."""
    if (birthday.month, birthday.day) == (2, 29) and not isleap(year):
        return date(year, 2, 28)
    return birthday.replace(year=year)


def next_birthday(
    trigger: DateReached, birthday: date, calendar: BusinessCalendar, now: datetime
) -> tuple[datetime, str]:
    """The first birthday whose moment (``offset_days`` from it, at the trigger's local time)
    is after ``now``, and that birthday's date (its year keys the firing)."""
    year = now.astimezone(calendar.zone).year - 2  # an offset reaches up to a year either way
    while True:
        day = anniversary(birthday, year)
        moment = datetime.combine(
            day + timedelta(days=trigger.offset_days), trigger.at, tzinfo=calendar.zone
        )
        if moment > now:
            return moment, day.isoformat()
        year += 1


def watch_due(
    trigger: DateReached | NoActivity,
    deal: dict[str, Any],
    calendar: BusinessCalendar,
    activity_at: datetime,
    now: datetime,
) -> tuple[datetime, str] | None:
    """When a watched trigger falls due for the deal, and what that was computed from (the
    date, the birthday of the year, or the last activity); None when the deal's field holds
    no date."""
    if isinstance(trigger, DateReached):
        day = date_of(_field_value(deal, trigger.field))
        if day is None:
            return None
        if trigger.field == BIRTHDAY:
            return next_birthday(trigger, day, calendar, now)
        try:  # a date at the calendar's ends (9999-12-31 and a day after) has no moment
            moment = datetime.combine(
                day + timedelta(days=trigger.offset_days), trigger.at, tzinfo=calendar.zone
            )
            moment.astimezone(UTC)
        except OverflowError:
            return None
        return moment, day.isoformat()
    if trigger.working_days:
        due = calendar.add_working_days(activity_at, trigger.days)
    else:
        due = activity_at + timedelta(days=trigger.days)
    return due, activity_at.isoformat()


def watched_values(
    expected_close_date: date | None, custom_fields: dict[str, Any]
) -> dict[str, Any]:
    """The deal's dates a watched trigger reads, as ``deal_values`` shows them (JSON), without
    dumping the whole deal."""
    return {
        "expected_close_date": expected_close_date.isoformat() if expected_close_date else None,
        "custom_fields": custom_fields,
    }


def watch_key(trigger: DateReached | NoActivity, basis: str) -> str:
    """What makes a watched firing unique for its rule and deal: the date or activity it was
    computed from; for a birthday, its year (once a year, even when the birthday moves)."""
    if isinstance(trigger, DateReached) and trigger.field == BIRTHDAY:
        return f"birthday:{basis[:4]}"
    return basis


def watch_event(trigger: DateReached | NoActivity, basis: str) -> dict[str, Any]:
    """The facts a watched trigger's firing shows its conditions and the run log."""
    if isinstance(trigger, DateReached):
        return {
            "kind": trigger.kind,
            "field": trigger.field,
            "date": basis,
            "offset_days": trigger.offset_days,
        }
    return {"kind": trigger.kind, "days": trigger.days, "since": basis}


# --- conditions ------------------------------------------------------------------------------


def deal_values(deal: Deal) -> dict[str, Any]:
    """The deal as conditions see it: JSON, the amount as a number (CEL has no decimals)."""
    values = deal.model_dump(mode="json", exclude={"checklist_ticks"})
    values["amount"] = float(deal.amount) if deal.amount is not None else None
    return values


class CheckResult(BaseModel):
    cel: str
    label: str | None = None
    result: bool | None
    error: str | None = None


class Evaluation(BaseModel):
    """Whether the conditions hold, and each condition's result."""

    passed: bool
    checks: list[CheckResult]


def evaluate(group: Group | None, deal: dict[str, Any], event: dict[str, Any]) -> Evaluation:
    """Evaluate every condition (no short-circuit, so the run log shows each); an error in
    an expression (a missing field) counts as false."""
    checks: list[CheckResult] = []
    if group is None:
        return Evaluation(passed=True, checks=checks)
    activation = {"deal": json_to_cel(deal), "event": json_to_cel(event)}
    return Evaluation(passed=_group(group, activation, checks), checks=checks)


def _group(group: Group, activation: dict[str, Any], checks: list[CheckResult]) -> bool:
    members = group.all if group.all is not None else group.any or []
    results = [
        _group(member, activation, checks)
        if isinstance(member, Group)
        else _check(member, activation, checks)
        for member in members
    ]
    return all(results) if group.all is not None else any(results)


def _check(check: Check, activation: dict[str, Any], checks: list[CheckResult]) -> bool:
    try:
        value = compiled(check.cel).evaluate(activation)
    except Exception as exc:
        checks.append(CheckResult(cel=check.cel, label=check.label, result=None, error=str(exc)))
        return False
    result = bool(value) if isinstance(value, celtypes.BoolType) else None
    error = None if result is not None else f"not a boolean: {value!r}"
    checks.append(CheckResult(cel=check.cel, label=check.label, result=result, error=error))
    return bool(result)


def set_field_patch(deal: Deal, field: str, value: Any) -> dict[str, Any]:
    """The merge patch setting ``field`` (a nested one inside its object)."""
    head, _, rest = field.partition(".")
    if not rest:
        return {head: value}
    current = dict(getattr(deal, head) if head == "custom_fields" else deal.source.model_dump())
    current[rest] = value
    return {head: current}


def elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


# --- what the API shows ----------------------------------------------------------------------


class StepRecord(BaseModel):
    position: int
    kind: str
    status: Literal["scheduled", "done", "skipped", "failed", "retrying"]
    detail: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    duration_ms: int


class Run(BaseModel):
    """One firing of one rule version for one deal event (or why it stopped)."""

    id: uuid.UUID
    rule_id: uuid.UUID
    rule_version: int
    deal_id: uuid.UUID
    event_id: uuid.UUID
    trigger: dict[str, Any]
    status: Literal["fired", "conditions_not_met", "loop_stopped", "skipped", "failed"]
    reason: str | None = None
    conditions: list[CheckResult]
    chain: list[uuid.UUID]
    started_at: datetime
    duration_ms: int
    steps: list[StepRecord] = Field(default_factory=list)


class ManualRun(_Strict):
    deal_id: uuid.UUID


class DryRun(_Strict):
    """A hypothetical event for the deal: the trigger's facts (defaults: the rule's own)."""

    deal_id: uuid.UUID
    event: dict[str, Any] | None = None


class BacktestRequest(_Strict):
    last: int = Field(default=100, ge=1, le=1000, description="how many of the last events")


class BacktestResult(BaseModel):
    """One stored event: did the trigger match, would the rule have fired (conditions on the
    deal as it is now)."""

    event_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    deal_id: uuid.UUID
    triggered: bool
    would_fire: bool
    trigger: dict[str, Any] | None = None
    conditions: list[CheckResult] = Field(default_factory=list)


class Backtest(BaseModel):
    rule_id: uuid.UUID
    rule_version: int
    events: int
    would_fire: int
    results: list[BacktestResult]


class PreviewRequest(_Strict):
    deal_id: uuid.UUID
    position: int = Field(default=0, ge=0, lt=20, description="which action (a `notify`)")


class Preview(BaseModel):
    subject: str
    text: str | None


class DryRunResult(BaseModel):
    would_fire: bool
    reason: str | None = None
    conditions: list[CheckResult]
    actions: list[dict[str, Any]]


# --- business calendars (API bodies) ---------------------------------------------------------


class CalendarBody(_Strict):
    """A calendar as written: settings (a direction without them works the company's) and
    its own days (`{"2026-12-31": {"working": false, "note": "..."}}`), replaced whole."""

    settings: CalendarSettings | None = None
    days: dict[date, CalendarDay] = Field(default_factory=dict, max_length=2000)


class DuePreview(BaseModel):
    due_at: datetime
    timezone: str


# --- inbound webhooks ------------------------------------------------------------------------

HOOK_TOLERANCE_SECONDS = 300
"""How far a signed call's timestamp may be from now (a captured call replays only so long,
and then only onto the same firing)."""

MAX_HOOK_BODY = 64 * 1024


class HookCall(_Strict):
    """The body of an inbound webhook call: the deal and what the caller knows (`event.data`
    in conditions)."""

    deal_id: uuid.UUID
    data: dict[str, Any] = Field(default_factory=dict)


class HookSecret(BaseModel):
    """A rule's inbound webhook secret, shown once: sign `<timestamp>.<body>` with
    HMAC-SHA256 and send `X-Clientele-Timestamp` (Unix seconds) and
    `X-Clientele-Signature: sha256=<hex>`."""

    secret: str
    url: str


def hook_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def hook_signed(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> bool:
    """Whether a call is signed with the secret at a time near ``now`` (constant time)."""
    if timestamp is None or signature is None or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs(now - int(timestamp)) > HOOK_TOLERANCE_SECONDS:
        return False
    return hmac.compare_digest(hook_signature(secret, timestamp, body), signature)
