"""Greetings end to end with the sweep run in-process at chosen moments (deterministic): a
birthday today in Vladivostok but not yet in Kaliningrad, 29 February, a professional holiday
by rule from the seeded calendar, once a year across a restart and two sweepers at once,
consent and block filtering through the mailings' send path, access by direction, the calendar's
CRUD, bad input."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from clientele_campaigns.app import PUBLISHES
from clientele_campaigns.greetings import service as greetings
from clientele_campaigns.mailings import service as mailings
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import PERSONS_STATE
from clientele_shared.events.schemas.directory import (
    EmploymentState,
    OrganizationState,
    PersonState,
)
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, directory_envelope, running
from mailings_testkit import PUBLIC_URL, worker

OWN = ["north"]
"""The directions of the running test (a fresh one each test: a greeting reaches its whole
direction)."""
TEMPLATE = {
    "subject": "С днём рождения, {{ person.salutation }}!",
    "html": '<p>{{ person.salutation }}!</p><a href="{{ unsubscribe_url }}">Отписаться</a>',
    "text": "{{ person.salutation }}! Отписаться: {{ unsubscribe_url }}",
}


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The service without its worker: the tests sweep themselves, as of chosen moments."""
    env = {**service_env, "RUN_MAILING_WORKER": "false", "PUBLIC_BASE_URL": PUBLIC_URL}
    logs = tmp_path_factory.mktemp("greetings")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


@pytest.fixture(autouse=True)
def _only_this_tests_greetings(stack: Stack) -> Iterator[None]:
    """A sweep looks at every active greeting (an earlier test's are paused) and a greeting
    reaches its whole direction (each test has a direction of its own)."""
    stack.execute("UPDATE greetings SET active = false")
    OWN[:] = [f"t{uuid.uuid4().hex[:12]}"]
    yield
    OWN[:] = ["north"]
    _leave_nothing_open(stack)


def _leave_nothing_open(stack: Stack) -> None:
    """No greeting swept and no day's mailing handed over after the test (other modules' worker
    steps take any sending mailing)."""
    stack.execute("UPDATE greetings SET active = false")
    stack.execute(
        "UPDATE mailings SET status = 'cancelled' "
        "WHERE audience->>'kind' = 'greeting' AND status <> 'done'"
    )


def _organization(
    stack: Stack,
    *,
    industry: str | None = None,
    time_zone: str | None = None,
    directions: Sequence[str] | None = None,
) -> uuid.UUID:
    organization_id = uuid.uuid4()
    state = OrganizationState(
        organization_id=organization_id,
        version=1,
        revision=1,
        legal_name="ООО «Сталь»",
        industry=industry,
        attributes={} if time_zone is None else {"time_zone": time_zone},
        status="active",
        directions=list(directions or OWN),
    )
    stack.publish_state("directory.organization.state", state, str(organization_id))
    stack.wait_until(
        "SELECT count(*) FROM mailing_organizations m JOIN organizations o USING "
        "(organization_id) WHERE organization_id = :o",
        1,
        "the organization",
        o=organization_id,
    )
    return organization_id


def _person(
    stack: Stack,
    organization: uuid.UUID,
    *,
    first: str,
    birthday: date | None = None,
    time_zone: str | None = None,
    position: str = "Инженер",
    blocked: bool = False,
    with_consent: bool = True,
    directions: Sequence[str] | None = None,
) -> uuid.UUID:
    person_id = uuid.uuid4()
    state = PersonState(
        person_id=person_id,
        version=1,
        revision=1,
        first_name=first,
        middle_name="Петрович",
        last_name="Иванов",
        birthday=birthday,
        emails=[f"{person_id.hex[:8]}@example.ru"],
        directions=list(directions or OWN),
        attributes={} if time_zone is None else {"time_zone": time_zone},
        employments=[
            EmploymentState(
                employment_id=uuid.uuid4(),
                organization_id=organization,
                version=1,
                position=position,
            )
        ],
        blocked=blocked,
    )
    stack.send(PERSONS_STATE, [directory_envelope("directory.person.state", state, person_id)])
    stack.wait_until(
        "SELECT count(*) FROM mailing_contacts c JOIN persons p USING (person_id) "
        "WHERE person_id = :p",
        1,
        "the person",
        p=person_id,
    )
    if with_consent:
        body = {"person_id": str(person_id), "channel": "email", "granted": True, "source": "form"}
        response = stack.call("POST", "/v1/consents", stack.user(OWN), json=body)
        assert response.status_code == 201, response.text
    return person_id


def _greeting(stack: Stack, occasion: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body = {
        "title": "Поздравление",
        "directions": OWN,
        "occasion": occasion,
        "template": TEMPLATE,
        **extra,
    }
    response = stack.call("POST", "/v1/greetings", stack.user(OWN), json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _sweep(stack: Stack, at: datetime) -> int:
    return worker(stack, lambda rt: greetings.sweep(rt, mailings.settings_of(rt), at))


def _outcomes(stack: Stack, greeting: dict[str, Any]) -> list[dict[str, Any]]:
    response = stack.call("GET", f"/v1/greetings/{greeting['id']}/greeted", stack.user(OWN))
    assert response.status_code == 200, response.text
    return list(response.json())


def _greeted(stack: Stack, greeting: dict[str, Any]) -> dict[str, str]:
    """Person → local date greeted."""
    return {
        row["person_id"]: row["local_date"]
        for row in _outcomes(stack, greeting)
        if row["outcome"] == "greeted"
    }


def _excluded(stack: Stack, greeting: dict[str, Any]) -> dict[str, str]:
    """Person → why the day's mailing excluded them (no greeting yet)."""
    return {
        row["person_id"]: row["reason"]
        for row in _outcomes(stack, greeting)
        if row["outcome"] == "excluded"
    }


def _day_mailings(stack: Stack, greeting: dict[str, Any]) -> int:
    return int(
        stack.scalar(
            "SELECT count(*) FROM mailings WHERE audience->>'greeting_id' = :g",
            g=greeting["id"],
        )
    )


def test_a_birthday_today_in_vladivostok_but_not_yet_in_kaliningrad(stack: Stack) -> None:
    east = _organization(stack, time_zone="Asia/Vladivostok")
    west = _organization(stack, time_zone="Europe/Kaliningrad")
    march_10 = date(1980, 3, 10)
    by_org = _person(stack, east, first="Иван", birthday=march_10)
    in_west = _person(stack, west, first="Пётр", birthday=march_10)
    own_zone = _person(  # works in Kaliningrad, lives in Vladivostok: their own zone wins
        stack, west, first="Олег", birthday=march_10, time_zone="Asia/Vladivostok"
    )
    yesterday = _person(stack, east, first="Глеб", birthday=date(1990, 3, 9))
    silent = _person(stack, east, first="Нил", birthday=march_10, with_consent=False)
    blocked = _person(stack, east, first="Лев", birthday=march_10, blocked=True)
    no_birthday = _person(stack, east, first="Ян")
    greeting = _greeting(stack, {"kind": "birthday"}, send_at="10:00")
    assert greeting["send_at"] == "10:00:00"

    # 00:30 UTC: 10:30 in Vladivostok, 02:30 in Kaliningrad
    assert _sweep(stack, datetime(2026, 3, 10, 0, 30, tzinfo=UTC)) >= 1
    first = _greeted(stack, greeting)
    assert first == {str(by_org): "2026-03-10", str(own_zone): "2026-03-10"}
    assert _excluded(stack, greeting) == {str(silent): "no_consent", str(blocked): "blocked_person"}
    assert str(yesterday) not in first
    assert str(no_birthday) not in first
    mailing_id = stack.scalar(
        "SELECT DISTINCT mailing_id FROM greeting_sends WHERE greeting_id = :g", g=greeting["id"]
    )
    north = stack.user(OWN)
    day = stack.call("GET", f"/v1/mailings/{mailing_id}", north).json()
    assert day["status"] == "sending"
    assert day["audience"]["kind"] == "greeting"
    assert day["totals"]["pending"] == 2
    assert (day["totals"]["excluded:no_consent"], day["totals"]["excluded:blocked_person"]) == (
        1,
        1,
    )
    # the send path hands them to the notifier as any mailing's
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) >= 2
    rows = stack.call("GET", f"/v1/mailings/{mailing_id}/recipients", north).json()
    assert {r["person_id"]: r["status"] for r in rows} == {
        str(by_org): "queued",
        str(own_zone): "queued",
        str(silent): "excluded",
        str(blocked): "excluded",
    }

    # 08:30 UTC: 10:30 in Kaliningrad; those greeted at dawn are not greeted again
    _sweep(stack, datetime(2026, 3, 10, 8, 30, tzinfo=UTC))
    assert _greeted(stack, greeting) == {**first, str(in_west): "2026-03-10"}
    assert _day_mailings(stack, greeting) == 2


def test_an_exclusion_on_the_day_is_no_greeting_and_is_retried_once_lifted(stack: Stack) -> None:
    """An excluded recipient is kept as excluded with the reason, not as greeted: the sweep
    takes them again (no mailing while they would still be excluded) and greets them once
    the exclusion is lifted within the day; a greeting is still once a year."""
    organization = _organization(stack, time_zone="Europe/Moscow")
    silent = _person(
        stack, organization, first="Нил", birthday=date(1985, 6, 1), with_consent=False
    )
    blocked = _person(stack, organization, first="Лев", birthday=date(1985, 6, 1), blocked=True)
    greeting = _greeting(stack, {"kind": "birthday"}, send_at="10:00")

    _sweep(stack, datetime(2027, 6, 1, 8, tzinfo=UTC))  # 11:00 in Moscow
    assert _greeted(stack, greeting) == {}
    excluded = {str(silent): "no_consent", str(blocked): "blocked_person"}
    assert _excluded(stack, greeting) == excluded
    assert _day_mailings(stack, greeting) == 1
    _sweep(stack, datetime(2027, 6, 1, 9, tzinfo=UTC))  # still excluded: no second mailing
    assert (_excluded(stack, greeting), _day_mailings(stack, greeting)) == (excluded, 1)

    body = {"person_id": str(silent), "channel": "email", "granted": True, "source": "form"}
    response = stack.call("POST", "/v1/consents", stack.user(OWN), json=body)
    assert response.status_code == 201, response.text
    _sweep(stack, datetime(2027, 6, 1, 10, tzinfo=UTC))
    assert _greeted(stack, greeting) == {str(silent): "2027-06-01"}
    assert _excluded(stack, greeting) == {str(blocked): "blocked_person"}
    assert _day_mailings(stack, greeting) == 2
    [retried] = [r for r in _outcomes(stack, greeting) if r["person_id"] == str(silent)]
    rows = stack.call("GET", f"/v1/mailings/{retried['mailing_id']}/recipients", stack.user(OWN))
    assert [(r["person_id"], r["status"]) for r in rows.json()] == [(str(silent), "pending")]
    _sweep(stack, datetime(2027, 6, 1, 12, tzinfo=UTC))
    assert _day_mailings(stack, greeting) == 2


def test_a_reader_sees_no_excluded_person_of_a_direction_they_lack(stack: Stack) -> None:
    """A greeting of two directions: its excluded are named to a reader of one direction only
    when the reader sees them (as a mailing's recipients); a reader of both sees all."""
    other = [f"t{uuid.uuid4().hex[:12]}"]
    both = [*OWN, *other]
    mine = _person(
        stack,
        _organization(stack, time_zone="Europe/Moscow"),
        first="Нил",
        birthday=date(1985, 6, 1),
        with_consent=False,
    )
    theirs = _person(
        stack,
        _organization(stack, time_zone="Europe/Moscow", directions=other),
        first="Лев",
        birthday=date(1985, 6, 1),
        with_consent=False,
        directions=other,
    )
    body = {
        "title": "Поздравление",
        "directions": both,
        "occasion": {"kind": "birthday"},
        "template": TEMPLATE,
        "send_at": "10:00",
    }
    created = stack.call("POST", "/v1/greetings", stack.user(both), json=body)
    assert created.status_code == 201, created.text
    path = f"/v1/greetings/{created.json()['id']}/greeted"
    _sweep(stack, datetime(2027, 6, 1, 8, tzinfo=UTC))

    def excluded(directions: list[str]) -> set[str]:
        response = stack.call("GET", path, stack.user(directions))
        assert response.status_code == 200, response.text
        return {r["person_id"] for r in response.json() if r["outcome"] == "excluded"}

    assert excluded(both) == {str(mine), str(theirs)}
    assert excluded(OWN) == {str(mine)}
    assert excluded(other) == {str(theirs)}


def test_a_sweeper_down_for_a_whole_day_greets_a_day_late_but_not_two(stack: Stack) -> None:
    """GREETING_CATCH_UP_DAYS (1 by default): a birthday the sweeper missed yesterday is
    greeted today, one missed the day before is not."""
    organization = _organization(stack, time_zone="Europe/Moscow")
    yesterday = _person(stack, organization, first="Глеб", birthday=date(1975, 8, 9))
    two_days_ago = _person(stack, organization, first="Фрол", birthday=date(1975, 8, 8))
    today = _person(stack, organization, first="Ефим", birthday=date(1975, 8, 10))
    greeting = _greeting(stack, {"kind": "birthday"}, send_at="10:00")

    _sweep(stack, datetime(2027, 8, 10, 5, tzinfo=UTC))  # 08:00 of the 10th in Moscow
    assert _greeted(stack, greeting) == {str(yesterday): "2027-08-09"}
    _sweep(stack, datetime(2027, 8, 10, 8, tzinfo=UTC))  # 11:00: today's too
    assert _greeted(stack, greeting) == {str(yesterday): "2027-08-09", str(today): "2027-08-10"}
    assert str(two_days_ago) not in _greeted(stack, greeting)
    _sweep(stack, datetime(2027, 8, 11, 8, tzinfo=UTC))  # a day later: nobody twice
    assert _day_mailings(stack, greeting) == 2


def test_29_february_is_greeted_on_28_february_in_a_year_without_it(stack: Stack) -> None:
    organization = _organization(stack)  # no zone anywhere: the greeting's
    leap = _person(stack, organization, first="Касьян", birthday=date(2000, 2, 29))
    greeting = _greeting(stack, {"kind": "birthday"}, time_zone="Europe/Moscow")

    _sweep(stack, datetime(2027, 2, 27, 9, tzinfo=UTC))
    assert _greeted(stack, greeting) == {}
    _sweep(stack, datetime(2027, 2, 28, 9, tzinfo=UTC))  # 12:00 in Moscow
    assert _greeted(stack, greeting) == {str(leap): "2027-02-28"}
    _sweep(stack, datetime(2027, 3, 1, 9, tzinfo=UTC))
    _sweep(stack, datetime(2028, 2, 28, 9, tzinfo=UTC))  # 2028 has its 29 February
    assert _greeted(stack, greeting) == {str(leap): "2027-02-28"}
    _sweep(stack, datetime(2028, 2, 29, 9, tzinfo=UTC))
    response = stack.call(
        "GET", f"/v1/greetings/{greeting['id']}/greeted", stack.user(OWN), params={"year": 2028}
    )
    assert [(r["person_id"], r["local_date"]) for r in response.json()] == [
        (str(leap), "2028-02-29")
    ]


def test_a_professional_holiday_by_rule_reaches_its_industry(stack: Stack) -> None:
    calendar = stack.call("GET", "/v1/professional-holidays", stack.user(OWN)).json()
    [metallurgist] = [h for h in calendar if h["name"] == "День металлурга"]
    assert metallurgist["rule"] == {"kind": "weekday", "month": 7, "weekday": "sunday", "nth": 3}
    mill = _organization(stack, industry="металлургия")  # any case
    shop = _organization(stack, industry="Торговля")
    steelworker = _person(stack, mill, first="Илья")
    clerk = _person(stack, shop, first="Фома")
    greeting = _greeting(
        stack, {"kind": "holiday", "holiday_id": metallurgist["id"]}, send_at="09:00"
    )

    _sweep(stack, datetime(2026, 7, 18, 9, tzinfo=UTC))
    assert _greeted(stack, greeting) == {}
    _sweep(stack, datetime(2026, 7, 19, 9, tzinfo=UTC))  # the third Sunday of July 2026
    assert _greeted(stack, greeting) == {str(steelworker): "2026-07-19"}
    assert str(clerk) not in _greeted(stack, greeting)


def test_a_professional_holiday_of_a_position_reaches_it_in_any_industry(stack: Stack) -> None:
    calendar = stack.call("GET", "/v1/professional-holidays", stack.user(OWN)).json()
    [accountants] = [h for h in calendar if h["name"] == "День бухгалтера"]
    assert (accountants["rule"], accountants["industries"], accountants["positions"]) == (
        {"kind": "fixed", "month": 11, "day": 21},
        [],
        ["бухгалтер"],
    )
    shop = _organization(stack, industry="Торговля")
    accountant = _person(stack, shop, first="Анна", position="Главный бухгалтер")
    engineer = _person(stack, shop, first="Борис")
    greeting = _greeting(stack, {"kind": "holiday", "holiday_id": accountants["id"]})
    _sweep(stack, datetime(2026, 11, 21, 9, tzinfo=UTC))
    assert _greeted(stack, greeting) == {str(accountant): "2026-11-21"}
    assert str(engineer) not in _greeted(stack, greeting)


def test_once_a_year_across_a_restart_and_two_sweepers_at_once(stack: Stack) -> None:
    organization = _organization(stack, time_zone="Europe/Moscow")
    person = _person(stack, organization, first="Иван", birthday=date(1970, 5, 5))
    greeting = _greeting(stack, {"kind": "birthday"})
    at = datetime(2026, 5, 5, 8, tzinfo=UTC)

    async def two_replicas(database_url: str, bootstrap: str) -> list[int]:
        async def one() -> int:
            settings = CampaignsSettings(
                database_url=database_url,  # type: ignore[arg-type]
                kafka_bootstrap_servers=bootstrap,
                public_base_url=PUBLIC_URL,
            )
            runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
            try:
                return await greetings.sweep(runtime, settings, at)
            finally:
                await runtime.producer.stop()
                await runtime.engine.dispose()

        return list(await asyncio.gather(one(), one()))

    asyncio.run(two_replicas(stack.database_url, stack.bootstrap))
    assert _greeted(stack, greeting) == {str(person): "2026-05-05"}
    assert _day_mailings(stack, greeting) == 1
    # a restarted sweeper whose schedule was lost: the key still holds for 2026
    stack.execute("UPDATE greetings SET next_run_at = NULL WHERE id = :g", g=greeting["id"])
    _sweep(stack, datetime(2026, 5, 5, 15, tzinfo=UTC))
    assert _day_mailings(stack, greeting) == 1
    _sweep(stack, datetime(2027, 5, 5, 8, tzinfo=UTC))  # a year later: greeted again
    assert _day_mailings(stack, greeting) == 2


def test_greetings_are_seen_and_written_by_direction(stack: Stack) -> None:
    greeting = _greeting(stack, {"kind": "birthday"}, active=False)
    south = stack.user(["south"])
    path = f"/v1/greetings/{greeting['id']}"
    assert stack.call("GET", path, south).status_code == 404
    assert stack.call("GET", f"{path}/greeted", south).status_code == 404
    assert greeting["id"] not in {g["id"] for g in stack.call("GET", "/v1/greetings", south).json()}
    assert stack.call("PATCH", path, south, if_match=1, json={"title": "x"}).status_code == 404
    body = {"title": "Ю", "directions": OWN, "occasion": {"kind": "birthday"}}
    refused = stack.call("POST", "/v1/greetings", south, json={**body, "template": TEMPLATE})
    assert refused.status_code == 403
    north = stack.user(OWN)
    changed = stack.call("PATCH", path, north, if_match=1, json={"send_at": "11:30"})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["send_at"], changed.json()["version"]) == ("11:30:00", 2)
    assert stack.call("PATCH", path, north, if_match=1, json={"title": "x"}).status_code == 412


def test_a_greeting_from_a_stored_template_names_it_until_its_text_changes(
    stack: Stack,
) -> None:
    user = stack.user(OWN)
    stored = stack.call(
        "POST",
        "/v1/mail-templates",
        user,
        json={"name": "Поздравление", "directions": OWN, "template": TEMPLATE},
    )
    assert stored.status_code == 201, stored.text
    greeting = _greeting(
        stack, {"kind": "birthday"}, template=None, template_id=stored.json()["id"]
    )
    assert (greeting["template_id"], greeting["template_version"]) == (stored.json()["id"], 1)
    assert greeting["subject"] == TEMPLATE["subject"]
    path = f"/v1/greetings/{greeting['id']}"
    renamed = stack.call("PATCH", path, user, if_match=1, json={"title": "Иначе"}).json()
    assert renamed["template_id"] == stored.json()["id"]
    rewritten = stack.call(
        "PATCH", path, user, if_match=2, json={"template": {**TEMPLATE, "subject": "Ура!"}}
    ).json()
    assert (rewritten["subject"], rewritten["template_id"]) == ("Ура!", None)


def test_the_holiday_calendar_is_data_written_by_marketers(stack: Stack) -> None:
    marketer = stack.user(OWN, roles=["marketer"])
    body = {"name": "День тестировщика", "rule": {"kind": "fixed", "month": 9, "day": 9}}
    assert (
        stack.call("POST", "/v1/professional-holidays", stack.user(OWN), json=body).status_code
        == 403
    )
    created = stack.call("POST", "/v1/professional-holidays", marketer, json=body)
    assert created.status_code == 201, created.text
    path = f"/v1/professional-holidays/{created.json()['id']}"
    changed = stack.call(
        "PATCH", path, marketer, if_match=1, json={"industries": ["Информационные технологии"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["industries"] == ["Информационные технологии"]
    assert changed.json()["rule"] == {"kind": "fixed", "month": 9, "day": 9}
    assert stack.call("DELETE", path, marketer, if_match=2).status_code == 204
    assert stack.call("GET", path, marketer).status_code == 404
    occasion = {"kind": "holiday", "holiday_id": created.json()["id"]}
    gone = stack.call(
        "POST",
        "/v1/greetings",
        stack.user(OWN),
        json={"title": "x", "directions": OWN, "occasion": occasion, "template": TEMPLATE},
    )
    assert gone.status_code == 422


BAD_GREETINGS: list[tuple[dict[str, Any], str]] = [
    ({"occasion": {"kind": "name_day"}}, "occasion"),
    ({"occasion": {"kind": "holiday", "holiday_id": str(uuid.uuid4())}}, "holiday_id"),
    ({"title": "С\x00днём"}, "title"),
    ({"send_at": "25:00"}, "send_at"),
    ({"send_at": "10:00+03:00"}, "send_at"),
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"channel": "pigeon"}, "channel"),
    ({"template": {"subject": "Привет", "text": "без ссылки"}}, "template"),
    ({"template": {"subject": "{{ person.", "text": "{{ unsubscribe_url }}"}}, "subject"),
    ({"audience": {"list_id": str(uuid.uuid4())}}, "list_id"),
    ({"audience": {"kind": "list"}}, "audience"),
    ({"audience": {"positions": ["бух\x00галтер"]}}, "positions"),
    ({"audience": {"industries": ["Металл\x00ургия"]}}, "industries"),
]


@pytest.mark.parametrize(("change", "where"), BAD_GREETINGS)
def test_bad_greetings_are_refused(stack: Stack, change: dict[str, Any], where: str) -> None:
    body = {
        "title": "Поздравление",
        "directions": OWN,
        "occasion": {"kind": "birthday"},
        "template": TEMPLATE,
        **change,
    }
    before = stack.scalar("SELECT count(*) FROM greetings")
    response = stack.call("POST", "/v1/greetings", stack.user(OWN), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert where in response.text
    assert stack.scalar("SELECT count(*) FROM greetings") == before


@pytest.mark.parametrize(
    "rule",
    [
        {"kind": "fixed", "month": 2, "day": 30},
        {"kind": "weekday", "month": 7, "weekday": "sunday", "nth": 5},
        {"kind": "lunar", "month": 1},
    ],
)
def test_bad_holidays_are_refused(stack: Stack, rule: dict[str, Any]) -> None:
    body: dict[str, Any] = {"name": "День\x00", "rule": rule}
    admin = stack.user(OWN, roles=["admin"])
    assert stack.call("POST", "/v1/professional-holidays", admin, json=body).status_code == 422
    body["name"] = "День"
    response = stack.call("POST", "/v1/professional-holidays", admin, json=body)
    assert response.status_code == 422, response.text
    fine = {"kind": "fixed", "month": 1, "day": 1}
    for wrong in ({"positions": ["бух\x00галтер"]}, {"industries": ["\x00"]}):
        response = stack.call(
            "POST", "/v1/professional-holidays", admin, json={**body, "rule": fine, **wrong}
        )
        assert response.status_code == 422, response.text
