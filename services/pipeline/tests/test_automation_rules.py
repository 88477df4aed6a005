"""Pure tests of automation rules: which deal events match which trigger (value precision),
and how CEL conditions evaluate in AND/OR groups."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from clientele_pipeline.automation.calendar import effective
from clientele_pipeline.automation.engine import Trigger, _rounds
from clientele_pipeline.automation.rules import (
    Group,
    Rule,
    RuleDefinition,
    RuleIndex,
    anniversary,
    evaluate,
    next_birthday,
    occurrences,
    triggered,
    watch_due,
    watch_key,
)
from pydantic import TypeAdapter, ValidationError

DEAL = str(uuid.uuid4())
STAGE_A, STAGE_B = str(uuid.uuid4()), str(uuid.uuid4())


def _trigger(**spec: Any) -> Any:
    definition = RuleDefinition.model_validate(
        {"name": "r", "trigger": spec, "actions": [{"kind": "add_tags", "tags": ["x"]}]}
    )
    return definition.trigger


def _changed(changes: dict[str, Any]) -> list[Any]:
    payload = {"deal_id": DEAL, "changes": changes}
    return occurrences("pipeline.deal.changed", uuid.uuid4(), payload)


def _fires(trigger: Any, found: list[Any]) -> list[dict[str, Any]]:
    return [event for o in found if (event := triggered(trigger, o)) is not None]


@pytest.mark.parametrize(
    ("match", "old", "new", "fires"),
    [
        ({"match": "any"}, "B", "A", True),
        ({"match": "to", "to": "A"}, "C", "A", True),
        ({"match": "to", "to": "A"}, "A", "B", False),
        ({"match": "from_to", "from": "B", "to": "A"}, "B", "A", True),
        ({"match": "from_to", "from": "B", "to": "A"}, "C", "A", False),
        ({"match": "from_to", "from": None, "to": "A"}, None, "A", True),
        ({"match": "from_to", "from": "B", "to": None}, "B", None, True),
    ],
)
def test_a_field_changed_from_x_to_y(
    match: dict[str, Any], old: Any, new: Any, fires: bool
) -> None:
    trigger = _trigger(kind="field_changed", field="custom_fields.grade", **match)
    changes = {"custom_fields": {"old": {"grade": old, "n": 1}, "new": {"grade": new, "n": 2}}}
    assert bool(_fires(trigger, _changed(changes))) is fires


def test_another_custom_field_changing_is_no_change_of_this_one() -> None:
    trigger = _trigger(kind="field_changed", field="custom_fields.grade")
    changes = {"custom_fields": {"old": {"grade": "A", "n": 1}, "new": {"grade": "A", "n": 2}}}
    assert _fires(trigger, _changed(changes)) == []
    assert _fires(_trigger(kind="field_changed", field="amount"), _changed(changes)) == []


def test_tags_added_and_removed_one_by_one() -> None:
    found = _changed({"tags": {"old": ["a", "b"], "new": ["b", "c"]}})
    assert _fires(_trigger(kind="tag_added", tag="c"), found) == [{"kind": "tag_added", "tag": "c"}]
    assert _fires(_trigger(kind="tag_added", tag="a"), found) == []
    assert _fires(_trigger(kind="tag_removed"), found) == [{"kind": "tag_removed", "tag": "a"}]


def test_stage_entered_and_left() -> None:
    payload = {"deal_id": DEAL, "from_stage_id": STAGE_A, "to_stage_id": STAGE_B}
    found = occurrences("pipeline.deal.stage_changed", uuid.uuid4(), payload)
    assert _fires(_trigger(kind="stage_entered", stage_id=STAGE_B), found)
    assert not _fires(_trigger(kind="stage_entered", stage_id=STAGE_A), found)
    assert _fires(_trigger(kind="stage_left", stage_id=STAGE_A), found)
    assert _fires(_trigger(kind="stage_left"), found)
    assert not _fires(_trigger(kind="deal_created"), found)
    created = occurrences(
        "pipeline.deal.created", uuid.uuid4(), {"deal_id": DEAL, "stage_id": STAGE_A}
    )
    assert _fires(_trigger(kind="deal_created"), created)
    assert occurrences("pipeline.deal.deleted", uuid.uuid4(), {"deal_id": DEAL}) == []


def test_conditions_in_and_or_groups_with_each_result() -> None:
    group = TypeAdapter(Group).validate_python(
        {
            "all": [
                {"cel": "deal.amount >= 1000.0 && deal.amount < 10000.0"},
                {"any": [{"cel": "'vip' in deal.tags"}, {"cel": "deal.source.channel == 'web'"}]},
                {"cel": "'north' in deal.directions"},
                {"cel": "event.new == 'A'"},
            ]
        }
    )
    deal = {"amount": 5000.0, "tags": [], "source": {"channel": "web"}, "directions": ["north"]}
    evaluation = evaluate(group, deal, {"new": "A"})
    assert evaluation.passed
    assert [check.result for check in evaluation.checks] == [True, False, True, True, True]
    missing = evaluate(group, {**deal, "amount": None}, {"new": "A"})
    assert not missing.passed
    assert missing.checks[0].result is None
    assert missing.checks[0].error


def test_invalid_rules_are_refused() -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(Group).validate_python({"all": [{"cel": "deal.amount >="}]})
    with pytest.raises(ValidationError):
        TypeAdapter(Group).validate_python({"all": [{"cel": "true"}], "any": [{"cel": "true"}]})
    with pytest.raises(ValidationError):
        TypeAdapter(Group).validate_python({})
    deep: dict[str, Any] = {"all": [{"cel": "true"}]}
    for _ in range(5):
        deep = {"any": [deep]}
    with pytest.raises(ValidationError, match="nest"):
        TypeAdapter(Group).validate_python(deep)
    with pytest.raises(ValidationError):
        _trigger(kind="field_changed", field="status")
    with pytest.raises(ValidationError):
        RuleDefinition.model_validate({"name": "r", "trigger": {"kind": "manual"}, "actions": []})


def test_a_rule_never_fires_on_what_happened_before_it_existed() -> None:
    now = datetime.now(UTC)
    rule = Rule.model_validate(
        {
            "id": uuid.uuid4(),
            "pipeline_id": uuid.uuid4(),
            "version": 1,
            "author_subject": "alice",
            "created_at": now,
            "updated_at": now,
            "name": "r",
            "trigger": {"kind": "deal_created"},
            "actions": [{"kind": "add_tags", "tags": ["x"]}],
        }
    )
    assert not rule.in_force_at(now - timedelta(seconds=1))
    assert rule.in_force_at(now)


def _rule(trigger: dict[str, Any]) -> Rule:
    now = datetime.now(UTC)
    return Rule.model_validate(
        {
            "id": uuid.uuid4(),
            "pipeline_id": uuid.uuid4(),
            "version": 1,
            "author_subject": "alice",
            "created_at": now,
            "updated_at": now,
            "name": "r",
            "trigger": trigger,
            "actions": [{"kind": "add_tags", "tags": ["x"]}],
        }
    )


def test_the_rule_index_offers_every_rule_that_fires_and_few_others() -> None:
    """The index's candidates for an event hold every rule whose trigger matches it, in the
    rules' order; 2,000 `to` rules on one field give one candidate."""
    many = [
        _rule(
            {"kind": "field_changed", "field": "custom_fields.grade", "match": "to", "to": f"v{n}"}
        )
        for n in range(2_000)
    ]
    others = [
        _rule({"kind": "field_changed", "field": "amount", "match": "any"}),
        _rule(
            {"kind": "field_changed", "field": "title", "match": "from_to", "from": "a", "to": "b"}
        ),
        _rule({"kind": "field_changed", "field": "amount", "match": "to", "to": 5}),
        _rule({"kind": "tag_added", "tag": "vip"}),
        _rule({"kind": "stage_entered", "stage_id": STAGE_B}),
        _rule({"kind": "deal_created"}),
    ]
    rules = [*others[:3], *many, *others[3:]]
    index = RuleIndex(rules)
    events = [
        _changed({"custom_fields": {"old": {}, "new": {"grade": "v1234"}}}),
        _changed({"amount": {"old": 1, "new": 5}, "title": {"old": "a", "new": "b"}}),
        _changed({"tags": {"old": [], "new": ["vip"]}}),
        occurrences(
            "pipeline.deal.stage_changed",
            uuid.uuid4(),
            {"deal_id": DEAL, "from_stage_id": STAGE_A, "to_stage_id": STAGE_B},
        ),
    ]
    for found in events:
        firing = [rule for rule in rules if _fires(rule.trigger, found)]
        candidates = index.candidates(found)
        assert firing, found
        assert [rule for rule in candidates if _fires(rule.trigger, found)] == firing
        assert candidates == [rule for rule in rules if rule in candidates]  # in order
    assert index.candidates(events[0]) == [rules[0], rules[2], many[1234]]  # 3 of 2,006


# --- the birthday trigger ----------------------------------------------------------------------


def _birthday(offset_days: int = 0, at: str = "09:00") -> Any:
    return _trigger(kind="date_reached", field="contact.birthday", offset_days=offset_days, at=at)


def test_29_february_falls_on_28_february_in_a_year_without_it() -> None:
    born = date(1992, 2, 29)
    assert anniversary(born, 2027) == date(2027, 2, 28)
    assert anniversary(born, 2028) == date(2028, 2, 29)
    assert anniversary(date(1990, 3, 14), 2027) == date(2027, 3, 14)


def test_the_next_birthday_is_the_first_whose_moment_is_still_ahead() -> None:
    calendar = effective(None, None)  # the company's default: Europe/Moscow
    msk = calendar.zone
    born = date(1980, 3, 14)
    before = datetime(2027, 3, 1, 12, tzinfo=msk)
    assert next_birthday(_birthday(-3), born, calendar, before) == (
        datetime(2027, 3, 11, 9, tzinfo=msk),
        "2027-03-14",
    )
    just_past = datetime(2027, 3, 11, 9, 0, 1, tzinfo=msk)  # this year's has fired: next year
    assert next_birthday(_birthday(-3), born, calendar, just_past)[1] == "2028-03-14"
    # 10 days before 5 January is in December of the year before; after it, the next January's
    january = next_birthday(
        _birthday(-10), date(1970, 1, 5), calendar, datetime(2026, 12, 1, tzinfo=msk)
    )
    assert january == (datetime(2026, 12, 26, 9, tzinfo=msk), "2027-01-05")
    leap = next_birthday(
        _birthday(1, "10:30"), date(1992, 2, 29), calendar, before.replace(month=1)
    )
    assert leap == (datetime(2027, 3, 1, 10, 30, tzinfo=msk), "2027-02-28")


def test_a_birthday_fires_once_a_year_however_it_moves() -> None:
    trigger = _birthday()
    assert watch_key(trigger, "2027-03-14") == watch_key(trigger, "2027-05-01") == "birthday:2027"
    assert watch_key(trigger, "2028-03-14") != watch_key(trigger, "2027-03-14")
    dated = _trigger(kind="date_reached", field="expected_close_date")
    assert watch_key(dated, "2027-03-14") == "2027-03-14"


def test_a_birthday_watch_comes_from_the_contact_and_none_without_one() -> None:
    calendar = effective(None, None)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    trigger = _birthday()
    assert watch_due(trigger, {"contact": {"birthday": None}}, calendar, now, now) is None
    assert watch_due(trigger, {}, calendar, now, now) is None
    found = watch_due(trigger, {"contact": {"birthday": "1980-03-14"}}, calendar, now, now)
    assert found is not None
    assert found[1] == "2027-03-14"


def test_a_batch_goes_in_rounds_that_keep_each_deals_order() -> None:
    one, two, three = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC)
    batch = [
        Trigger(deal, [], str(n), now, "pipeline.deal.changed")
        for n, deal in enumerate((one, two, one, three, one, two))
    ]
    rounds = _rounds(batch)
    assert [[t.deal_id for t in round_] for round_ in rounds] == [
        [one, two, three],
        [one, two],
        [one],
    ]
    assert [t.causation_id for round_ in rounds for t in round_] == ["0", "1", "3", "2", "5", "4"]


def test_the_index_knows_whether_a_rule_watches_time() -> None:
    def rule(trigger: dict[str, Any]) -> Rule:
        return Rule.model_validate(
            {
                "id": uuid.uuid4(),
                "pipeline_id": uuid.uuid4(),
                "version": 1,
                "author_subject": "a",
                "created_at": datetime.now(UTC),
                "updated_at": datetime.now(UTC),
                "name": "r",
                "trigger": trigger,
                "actions": [{"kind": "add_tags", "tags": ["x"]}],
            }
        )

    tagged = rule({"kind": "tag_added", "tag": "x"})
    idle = rule({"kind": "no_activity", "days": 3})
    assert not RuleIndex([tagged]).watching
    assert RuleIndex([tagged, idle]).watching


def test_a_date_at_the_end_of_the_calendar_is_not_watched_rather_than_an_error() -> None:
    """A deal's date of 9999-12-31 (or 0001-01-01) with an offset past the calendar's ends has
    no moment: it is not watched (before: OverflowError, a 500 on a rule's write and a dead
    letter for the deal's events)."""
    calendar = effective(None, None)
    now = datetime(2027, 1, 1, tzinfo=UTC)
    later = _trigger(kind="date_reached", field="expected_close_date", offset_days=1)
    earlier = _trigger(kind="date_reached", field="expected_close_date", offset_days=-1)
    assert watch_due(later, {"expected_close_date": "9999-12-31"}, calendar, now, now) is None
    assert watch_due(earlier, {"expected_close_date": "0001-01-01"}, calendar, now, now) is None
    found = watch_due(later, {"expected_close_date": "9999-12-30"}, calendar, now, now)
    assert found is not None
    assert found[0].date() == date(9999, 12, 31)
