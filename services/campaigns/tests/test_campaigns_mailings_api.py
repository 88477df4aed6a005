"""Mailings end to end with the worker's steps run in-process (deterministic): a Cyrillic
template validated up front, the audience resolved at send time and kept with every exclusion
and its reason, a preview, the hand-over to the notifier, pause/resume/cancel, delivery results,
each recipient's result and a hard bounce published, the one-click unsubscribe, access by
direction, bad input."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from clientele_campaigns.mailings import service as mailings
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import (
    CAMPAIGN_CONSENTS,
    DELIVERIES,
    MAILING_RESULTS,
    REGISTRY,
    notification_requests,
)
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.directory import PersonMerged
from clientele_shared.events.schemas.notifier import DeliveryResult
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, running
from mailings_testkit import PUBLIC_URL, consent, contact, mailing_body, worker

NORTH = ["north"]
REQUESTS = notification_requests("campaigns")


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The service without its mailing worker: the tests run the worker's steps themselves."""
    env = {**service_env, "RUN_MAILING_WORKER": "false", "PUBLIC_BASE_URL": PUBLIC_URL}
    logs = tmp_path_factory.mktemp("mailings")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _list(stack: Stack, organizations: list[uuid.UUID]) -> uuid.UUID:
    list_id = uuid.uuid4()
    stack.static_list(list_id, organizations, name="Бухгалтеры", directions=NORTH)
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id",
        len(organizations),
        "the list",
        id=list_id,
    )
    return list_id


def _create(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    response = stack.call("POST", "/v1/mailings", stack.user(NORTH), json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _act(stack: Stack, mailing: dict[str, Any], action: str) -> httpx.Response:
    current = stack.call("GET", f"/v1/mailings/{mailing['id']}", stack.user(NORTH))
    return stack.call(
        "POST",
        f"/v1/mailings/{mailing['id']}/{action}",
        stack.user(NORTH),
        if_match=current.headers["ETag"],
    )


def _deliver(stack: Stack, key: str, event_type: str, reason: str | None = None) -> Envelope:
    payload = DeliveryResult(
        delivery_id=uuid.uuid4(),
        request_id=uuid.uuid4(),
        requester="campaigns",
        idempotency_key=key,
        kind="mailing",
        channel="email",  # type: ignore[arg-type]
        recipient="x@example.ru",
        attempts=1,
        reason=reason,
    )
    envelope = Envelope(
        type=event_type,
        schema_version=REGISTRY.spec_for(event_type, payload).version,
        producer="notifier",
        correlation_id=uuid.uuid4().hex,
        aggregate_id=key,
        payload=payload.model_dump(mode="json"),
    )
    stack.send(DELIVERIES, [envelope])
    return envelope


def _results(stack: Stack, last: Envelope, persons: set[str], expected: int) -> list[Envelope]:
    """Every result event published for the persons, once the last delivery result sent was
    applied and the outbox relayed all of them (so one too many would be seen)."""
    stack.wait_until(
        "SELECT count(*) FROM inbox WHERE event_id = :e", 1, "the last result", e=last.event_id
    )
    stack.wait_until(
        "SELECT count(*) FROM outbox WHERE topic = :t", 0, "the relay", t=MAILING_RESULTS
    )
    found = stack.events(MAILING_RESULTS, persons, expected + 1, timeout_ms=3000)
    assert len(found) == expected, [e.payload for e in found]
    return found


def test_a_mailing_from_validation_to_results(stack: Stack) -> None:
    # the worker's steps take any due mailing: none of an earlier test's may be left open
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    romashka = stack.organization(NORTH, name="ООО «Ромашка & Ко»")
    blocked_org = stack.organization(NORTH, blocked=True)
    ivan = contact(
        stack,
        first="Иван",
        middle="Петрович",
        last="Иванов",
        organization=romashka,
        emails=["ivan@romashka.ru"],
        attributes={"code": "A-1"},
    )
    anna = contact(
        stack,
        first="Анна",
        middle="Сергеевна",
        last="Салтыкова-Щедрина",
        organization=romashka,
        position="Бухгалтер",
        emails=["anna@romashka.ru"],
    )
    silent = contact(
        stack, first="Пётр", middle=None, last="Петров", organization=romashka, emails=["p@r.ru"]
    )
    refused = contact(
        stack, first="Ольга", middle=None, last="Ким", organization=romashka, emails=["o@r.ru"]
    )
    blocked = contact(
        stack,
        first="Борис",
        middle=None,
        last="Бор",
        organization=romashka,
        emails=["b@r.ru"],
        blocked=True,
    )
    no_address = contact(stack, first="Нина", middle=None, last="Нет", organization=romashka)
    nameless = contact(
        stack, first=None, middle=None, last="Безымянный", organization=romashka, emails=["n@r.ru"]
    )
    at_blocked = contact(
        stack, first="Глеб", middle=None, last="Гнев", organization=blocked_org, emails=["g@r.ru"]
    )
    director = contact(
        stack,
        first="Дина",
        middle=None,
        last="Директор",
        organization=romashka,
        position="Директор",
        emails=["d@r.ru"],
    )
    for person in (ivan, anna, blocked, no_address, nameless, at_blocked, director):
        consent(stack, person)
    consent(stack, refused, granted=False, source="call")
    list_id = _list(stack, [romashka, blocked_org])

    mailing = _create(
        stack,
        mailing_body({"kind": "list", "list_id": str(list_id), "positions": ["бухгалтер"]}),
    )
    assert mailing["status"] == "draft"
    base = f"/v1/mailings/{mailing['id']}"

    report = stack.call("GET", f"{base}/validation", north).json()
    assert report["recipients"] == 2
    assert report["unsubscribe_link"] is True
    reasons = {(e["person_id"], e["reason"], e["detail"]) for e in report["exclusions"]}
    assert reasons == {
        (str(silent), "no_consent", None),
        (str(refused), "no_consent", None),
        (str(blocked), "blocked_person", None),
        (str(no_address), "no_address", None),
        (str(nameless), "missing_field", "person.dative.first_middle, person.salutation"),
        (str(at_blocked), "blocked_organization", None),
    }

    preview = stack.call("GET", f"{base}/preview", north, params={"person_id": str(ivan)}).json()
    assert preview["subject"] == "Уважаемый Иван Петрович, новости ООО «Ромашка & Ко»"
    assert "Письмо Ивану Петровичу из ООО «Ромашка &amp; Ко» (A-1)" in preview["html"]
    assert f'href="{PUBLIC_URL}/v1/public/unsubscribe/' in preview["html"]
    anna_preview = stack.call("GET", f"{base}/preview", north, params={"person_id": str(anna)})
    assert anna_preview.json()["text"].startswith("Уважаемая Анна Сергеевна!")
    nameless_preview = stack.call(
        "GET", f"{base}/preview", north, params={"person_id": str(nameless)}
    )
    assert nameless_preview.json()["excluded"] == "missing_field"

    # sent: the recipients resolved now and kept; one batch at a time
    assert _act(stack, mailing, "send").json()["status"] == "scheduled"
    assert worker(stack, mailings.prepare_due)
    assert stack.call("GET", base, north).json()["status"] == "sending"
    later = contact(
        stack, first="Лев", middle=None, last="Поздний", organization=romashka, emails=["l@r.ru"]
    )
    consent(stack, later)
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt)), batch=1) == 1
    assert _act(stack, mailing, "pause").json()["status"] == "paused"
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) == 0
    assert _act(stack, mailing, "send").status_code == 409
    assert _act(stack, mailing, "resume").json()["status"] == "sending"
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) == 1
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) == 0
    done = stack.call("GET", base, north).json()
    assert done["status"] == "done"
    assert done["totals"]["queued"] == 2
    assert done["totals"]["excluded"] == 6  # the director is no accountant: not named
    assert done["totals"]["excluded:no_consent"] == 2
    kept = stack.call("GET", f"{base}/recipients", north).json()
    assert str(later) not in {r["person_id"] for r in kept}  # resolved when it started

    keys = {f"mailing:{mailing['id']}:{p}" for p in (ivan, anna)}
    requests = stack.events(REQUESTS, keys, 2)
    assert {e.aggregate_id for e in requests} == keys
    by_person = {e.payload["idempotency_key"].rsplit(":", 1)[1]: e.payload for e in requests}
    message = by_person[str(ivan)]
    [recipient] = message["recipients"]
    assert (recipient["email"], recipient["name"]) == ("ivan@romashka.ru", "Иванов Иван Петрович")
    assert message["subject"] == "Уважаемый Иван Петрович, новости ООО «Ромашка & Ко»"
    assert message["list_unsubscribe"].startswith(f"{PUBLIC_URL}/v1/public/unsubscribe/")
    assert message["list_unsubscribe"] in message["html"]
    assert by_person[str(anna)]["html"].startswith("<p>Уважаемая Анна Сергеевна!</p>")

    # results come back; a hard bounce is published for the directory
    _deliver(stack, f"mailing:{mailing['id']}:{ivan}", "notifier.delivery.succeeded")
    _deliver(
        stack, f"mailing:{mailing['id']}:{anna}", "notifier.delivery.bounced", "550 no such user"
    )
    late = _deliver(
        stack, f"mailing:{mailing['id']}:{anna}", "notifier.delivery.succeeded"
    )  # late, ignored
    stack.wait_until(
        "SELECT count(*) FROM mailing_recipients WHERE mailing_id = :m AND result_at IS NOT NULL",
        2,
        "the results",
        m=mailing["id"],
    )
    totals = stack.call("GET", base, north).json()["totals"]
    assert (totals["sent"], totals["bounced"]) == (1, 1)
    [bounce] = stack.events(CAMPAIGN_CONSENTS, {str(anna)}, 2)[-1:]
    assert bounce.type == "campaigns.address.bounced"
    assert bounce.payload["email"] == "anna@romashka.ru"
    assert bounce.payload["reason"] == "550 no such user"
    # each recipient's result published once, with the mailing's facts (the late one: none)
    results = _results(stack, late, {str(ivan), str(anna)}, 2)
    seen = {(e.payload["person_id"], e.payload["result"], e.payload["reason"]) for e in results}
    assert seen == {(str(ivan), "sent", None), (str(anna), "bounced", "550 no such user")}
    for event in results:
        assert event.type == "campaigns.mailing.result_recorded"
        assert list(event.directions) == NORTH
        assert event.payload["mailing_id"] == mailing["id"]
        assert event.payload["organization_id"] == str(romashka)
        assert event.payload["channel"] == "email"

    # one-click unsubscribe (RFC 8058): a POST to the List-Unsubscribe URL
    link = message["list_unsubscribe"].removeprefix(PUBLIC_URL)
    assert stack.call("GET", link, {}).status_code == 200  # a page; nothing changes
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=ivan) == 1
    one_click = {
        "content": b"List-Unsubscribe=One-Click",
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }
    for _ in range(2):
        response = httpx.post(stack.url + link, timeout=30, **one_click)  # type: ignore[arg-type]
        assert response.status_code == 200
        assert "отписаны" in response.text
    seen = stack.call("GET", f"/v1/consents/{ivan}", north).json()
    assert seen["current"]["email"]["granted"] is False
    assert seen["current"]["email"]["source"] == "unsubscribe"
    assert seen["current"]["email"]["mailing_id"] == mailing["id"]
    assert len(seen["history"]) == 2  # the second click recorded nothing
    token = link.rsplit("/", 1)[1]
    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for bad in (tampered, "nonsense", "a.b"):
        assert httpx.post(f"{stack.url}/v1/public/unsubscribe/{bad}", timeout=30).status_code == 404
    again = _create(
        stack, mailing_body({"kind": "list", "list_id": str(list_id), "positions": ["бухгалтер"]})
    )
    report = stack.call("GET", f"/v1/mailings/{again['id']}/validation", north).json()
    assert (str(ivan), "unsubscribed") in {
        (e["person_id"], e["reason"]) for e in report["exclusions"]
    }


def test_scheduled_then_cancelled_and_changes_refused_once_started(stack: Stack) -> None:
    north = stack.user(NORTH)
    org = stack.organization(NORTH)
    person = contact(
        stack, first="Иван", middle="Ильич", last="Смирнов", organization=org, emails=["i@s.ru"]
    )
    consent(stack, person)
    body = mailing_body(
        {"kind": "organizations", "organization_ids": [str(org)]},
        scheduled_at="2099-01-01T09:00:00+03:00",
    )
    mailing = _create(stack, body)
    base = f"/v1/mailings/{mailing['id']}"
    patched = stack.call("PATCH", base, north, if_match=1, json={"title": "Новый заголовок"})
    assert patched.status_code == 200, patched.text
    assert stack.call("PATCH", base, north, if_match=1, json={"title": "x"}).status_code == 412
    assert stack.call("PATCH", base, north, json={"title": "x"}).status_code == 428
    assert _act(stack, mailing, "send").json()["status"] == "scheduled"
    assert (
        not worker(stack, mailings.prepare_due)
        or stack.call("GET", base, north).json()["status"] == "scheduled"
    )
    cancelled = _act(stack, mailing, "cancel").json()
    assert cancelled["status"] == "cancelled"
    for action in ("send", "pause", "resume", "cancel"):
        assert _act(stack, mailing, action).status_code == 409
    assert (
        stack.call(
            "PATCH", base, north, if_match=cancelled["version"], json={"title": "y"}
        ).status_code
        == 409
    )
    audit = stack.scalar("SELECT count(*) FROM audit_log WHERE entity_id = :m", m=mailing["id"])
    assert audit == 4  # created, changed, send, cancel


def test_mailings_are_seen_by_direction(stack: Stack) -> None:
    org = stack.organization(NORTH)
    mailing = _create(
        stack, mailing_body({"kind": "organizations", "organization_ids": [str(org)]})
    )
    base = f"/v1/mailings/{mailing['id']}"
    south = stack.user(["south"])
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/validation"),
        ("GET", f"{base}/recipients"),
        ("GET", f"{base}/preview?person_id={uuid.uuid4()}"),
        ("POST", f"{base}/cancel"),
    ]:
        assert stack.call(method, path, south, if_match=1).status_code == 404, path
    assert mailing["id"] not in {m["id"] for m in stack.call("GET", "/v1/mailings", south).json()}
    outside = stack.call(
        "POST",
        "/v1/mailings",
        south,
        json={**mailing_body({"kind": "organizations", "organization_ids": [str(org)]})},
    )
    assert outside.status_code == 403
    unseen = stack.call(
        "GET",
        f"{base}/preview",
        stack.user(NORTH),
        params={"person_id": str(stack.person(["south"]))},
    )
    assert unseen.status_code == 422


def test_the_validation_report_names_no_person_the_reader_may_not_see(stack: Stack) -> None:
    north_org, south_org = stack.organization(NORTH), stack.organization(["south"])
    ours = contact(stack, first="Иван", middle=None, last="Северов", organization=north_org)
    theirs = contact(
        stack,
        first="Юрий",
        middle=None,
        last="Южный",
        organization=south_org,
        directions=["south"],
    )
    list_id = uuid.uuid4()  # a list both directions share, a member of each
    stack.static_list(list_id, [north_org, south_org], directions=["north", "south"])
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id", 2, "the list", id=list_id
    )
    mailing = _create(stack, mailing_body({"kind": "list", "list_id": str(list_id)}))
    base = f"/v1/mailings/{mailing['id']}"

    report = stack.call("GET", f"{base}/validation", stack.user(NORTH))
    assert report.status_code == 200, report.text
    assert [e["person_id"] for e in report.json()["exclusions"]] == [str(ours)]
    assert report.json()["excluded"] == {"no_consent": 1}
    assert str(theirs) not in report.text
    both = stack.call("GET", f"{base}/validation", stack.user(["north", "south"])).json()
    assert {e["person_id"] for e in both["exclusions"]} == {str(ours), str(theirs)}

    # nor do the recipients kept at send time
    stack.execute(
        "UPDATE mailings SET status = 'cancelled' WHERE status <> 'done' AND id <> :m",
        m=mailing["id"],
    )
    assert _act(stack, mailing, "send").json()["status"] == "scheduled"
    assert worker(stack, mailings.prepare_due)
    kept = stack.call("GET", f"{base}/recipients", stack.user(NORTH))
    assert [r["person_id"] for r in kept.json()] == [str(ours)]
    assert str(theirs) not in kept.text
    everyone = stack.call("GET", f"{base}/recipients", stack.user(["north", "south"])).json()
    assert {r["person_id"] for r in everyone} == {str(ours), str(theirs)}


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"template": {"subject": "{{ person.salutation", "text": "x"}}, "syntax"),
        ({"template": {"subject": "x", "text": "{{ persona.name }}"}}, "unknown_variable"),
        ({"template": {"subject": "x", "text": "{{ person.nickname }}"}}, "unknown_field"),
        ({"template": {"subject": "x"}}, "missing_part"),
        ({"template": {"subject": "x", "text": "a\x00b"}}, "text_not_storable"),
        ({"template": {"subject": "", "text": "x"}}, "string_too_short"),
        ({"title": "a\x00b"}, None),
        ({"audience": {"kind": "everyone"}}, None),
        ({"audience": {"kind": "list", "list_id": str(uuid.uuid4())}}, "unknown_reference"),
        (
            {
                "audience": {
                    "kind": "event_stage",
                    "campaign_id": str(uuid.uuid4()),
                    "stage_id": str(uuid.uuid4()),
                }
            },
            "unknown_reference",
        ),
        ({"audience": {"kind": "organizations", "organization_ids": []}}, None),
        ({"campaign_id": str(uuid.uuid4())}, "unknown_reference"),
        ({"attachments": [{"filename": "a.pdf"}]}, None),
        ({"reply_to": "not an address"}, None),
        ({"scheduled_at": "2026-01-01T10:00:00"}, None),
        ({"extra": True}, None),
    ],
)
def test_bad_mailings_are_refused(stack: Stack, change: dict[str, Any], where: str | None) -> None:
    body = {
        **mailing_body({"kind": "organizations", "organization_ids": [str(uuid.uuid4())]}),
        **change,
    }
    response = stack.call("POST", "/v1/mailings", stack.user(NORTH), json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    if where is not None:
        assert where in response.text


def test_sending_needs_an_unsubscribe_link(stack: Stack) -> None:
    org = stack.organization(NORTH)
    body = mailing_body({"kind": "organizations", "organization_ids": [str(org)]})
    body["template"] = {"subject": "Без ссылки", "text": "Здравствуйте"}
    mailing = _create(stack, body)
    response = _act(stack, mailing, "send")
    assert response.status_code == 422
    assert "unsubscribe_url" in response.text
    checked = stack.call(
        "POST", "/v1/mail-templates/check", stack.user(NORTH), json=body["template"]
    )
    assert checked.json()["unsubscribe_link"] is False


def test_a_newsletter_resolves_its_list_anew_for_each_issue(stack: Stack) -> None:
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    first_org, later_org = stack.organization(NORTH), stack.organization(NORTH)
    early = contact(
        stack,
        first="Анна",
        middle="Ивановна",
        last="Ранняя",
        organization=first_org,
        emails=["a@e.ru"],
    )
    late = contact(
        stack,
        first="Пётр",
        middle="Ильич",
        last="Поздний",
        organization=later_org,
        emails=["p@l.ru"],
    )
    consent(stack, early)
    consent(stack, late)
    list_id = _list(stack, [first_org])
    recurrence = {"every": "month", "at": "10:00", "time_zone": "Asia/Yekaterinburg"}
    body = mailing_body(
        {"kind": "list", "list_id": str(list_id)},
        scheduled_at="2026-01-31T10:00:00+05:00",
        recurrence=recurrence,
    )
    newsletter = _create(stack, body)
    assert newsletter["series_id"] == newsletter["id"]
    assert _act(stack, newsletter, "send").json()["status"] == "scheduled"
    assert worker(stack, mailings.prepare_due)
    first = stack.call("GET", f"/v1/mailings/{newsletter['id']}/recipients", north).json()
    assert [r["person_id"] for r in first if r["status"] == "pending"] == [str(early)]
    issues = stack.call("GET", "/v1/mailings", north, params={"status": "scheduled"}).json()
    [second] = [m for m in issues if m["series_id"] == newsletter["id"]]
    assert second["issue"] == 2
    assert second["scheduled_at"].startswith("2026-02-28T05:00:00")  # 10:00 in Yekaterinburg
    # the list changes; the second issue, once due, reaches its members then
    stack.static_list(list_id, [later_org], name="Бухгалтеры", directions=NORTH)
    stack.wait_until(
        "SELECT count(*) FROM directory_list_members WHERE list_id = :id", 2, "the list", id=list_id
    )
    assert worker(stack, mailings.prepare_due)  # due already: February 2026 is past
    again = stack.call("GET", f"/v1/mailings/{second['id']}/recipients", north).json()
    assert sorted(r["person_id"] for r in again) == sorted([str(early), str(late)])
    # cancelling the next issue ends the series
    issues = stack.call("GET", "/v1/mailings", north, params={"status": "scheduled"}).json()
    [third] = [m for m in issues if m["series_id"] == newsletter["id"]]
    assert (third["issue"], third["scheduled_at"][:10]) == (3, "2026-03-31")
    assert _act(stack, third, "cancel").json()["status"] == "cancelled"
    unscheduled = mailing_body({"kind": "list", "list_id": str(list_id)}, recurrence=recurrence)
    refused = stack.call("POST", "/v1/mailings", north, json=unscheduled)
    assert refused.status_code == 422


def test_a_complaint_marks_the_recipient_and_withdraws_consent(stack: Stack) -> None:
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    organization = stack.organization(NORTH)
    read, unread = (
        contact(
            stack,
            first=name,
            middle=None,
            last="Жалобный",
            organization=organization,
            emails=[f"{n}@example.ru"],
        )
        for n, name in enumerate(("Олег", "Ольга"))
    )
    for person in (read, unread):
        consent(stack, person)
    mailing = _create(
        stack, mailing_body({"kind": "organizations", "organization_ids": [str(organization)]})
    )
    assert _act(stack, mailing, "send").status_code == 200
    assert worker(stack, mailings.prepare_due)
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) == 2
    key = f"mailing:{mailing['id']}:"
    _deliver(stack, f"{key}{read}", "notifier.delivery.succeeded")
    for person in (read, unread, read):  # once sent, once only queued, and a repeat
        last = _deliver(stack, f"{key}{person}", "notifier.delivery.complained", "complaint")
    stack.wait_until(
        "SELECT count(*) FROM mailing_recipients WHERE mailing_id = :m AND status = 'complained'",
        2,
        "the complaints",
        m=mailing["id"],
    )
    totals = stack.call("GET", f"/v1/mailings/{mailing['id']}", north).json()["totals"]
    assert totals["complained"] == 2
    stack.wait_until(
        "SELECT count(*) FROM consents WHERE person_id = :p", 2, "the withdrawal", p=read
    )
    seen = stack.call("GET", f"/v1/consents/{read}", north).json()
    assert seen["current"]["email"]["granted"] is False
    assert seen["current"]["email"]["source"] == "unsubscribe"
    assert seen["current"]["email"]["mailing_id"] == mailing["id"]
    results = _results(stack, last, {str(read), str(unread)}, 3)  # the repeat: nothing
    assert sorted((e.payload["person_id"] == str(read), e.payload["result"]) for e in results) == [
        (False, "complained"),
        (True, "complained"),
        (True, "sent"),
    ]


def test_a_complaint_of_a_person_merged_since_withdraws_the_survivors_consent(
    stack: Stack,
) -> None:
    """A mailing reached B, then the directory merged B into A: B's complaint (or unsubscribe
    link) withdraws A's consent, the person standing for B now (ADR 64)."""
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    organization = stack.organization(NORTH)
    merged, survivor = (
        contact(
            stack,
            first=name,
            middle=None,
            last="Слитный",
            organization=organization,
            emails=[f"{uuid.uuid4().hex[:8]}@example.ru"],
        )
        for name in ("Павел", "Пётр")
    )
    for person in (merged, survivor):
        consent(stack, person)
    mailing = _create(
        stack, mailing_body({"kind": "organizations", "organization_ids": [str(organization)]})
    )
    assert _act(stack, mailing, "send").status_code == 200
    assert worker(stack, mailings.prepare_due)
    assert worker(stack, lambda rt: mailings.hand_over(rt, mailings.settings_of(rt))) == 2
    payload = PersonMerged(
        survivor_id=survivor, merged_id=merged, survivor_version=2, merged_version=2
    )
    stack.publish("person", "directory.person.merged", payload, survivor)
    stack.wait_until(
        "SELECT merged_into FROM persons WHERE person_id = :p", survivor, "the merge", p=merged
    )
    _deliver(stack, f"mailing:{mailing['id']}:{merged}", "notifier.delivery.complained", "x")
    stack.wait_until(
        "SELECT count(*) FROM consents WHERE person_id = :p", 2, "the withdrawal", p=survivor
    )
    seen = stack.call("GET", f"/v1/consents/{survivor}", stack.user(NORTH)).json()
    assert (seen["current"]["email"]["granted"], seen["current"]["email"]["mailing_id"]) == (
        False,
        mailing["id"],
    )
    assert stack.scalar("SELECT count(*) FROM consents WHERE person_id = :p", p=merged) == 1


def test_stored_templates_are_versioned_and_mailings_are_made_from_them(stack: Stack) -> None:
    north, south = stack.user(NORTH), stack.user(["south"], subject="bob")
    parts = mailing_body({"kind": "organizations", "organization_ids": [str(uuid.uuid4())]})
    body = {"name": "Новости", "directions": NORTH, "template": parts["template"]}
    created = stack.call("POST", "/v1/mail-templates", north, json=body)
    assert created.status_code == 201, created.text
    assert created.headers["ETag"] == 'W/"1"'
    template = created.json()
    base = f"/v1/mail-templates/{template['id']}"
    broken = {**body, "template": {"subject": "{{ person.nosuch }", "text": "x"}}
    assert stack.call("POST", "/v1/mail-templates", north, json=broken).status_code == 422
    assert stack.call("GET", base, south).status_code == 404
    assert template["id"] in {
        t["id"] for t in stack.call("GET", "/v1/mail-templates", north).json()
    }
    assert template["id"] not in {
        t["id"] for t in stack.call("GET", "/v1/mail-templates", south).json()
    }
    subject = "{{ person.salutation }}, второй выпуск"
    changed = stack.call(
        "PATCH",
        base,
        north,
        if_match=1,
        json={"template": {**body["template"], "subject": subject}},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["version"] == 2
    assert stack.call("PATCH", base, north, if_match=1, json={"name": "x"}).status_code == 412
    versions = stack.call("GET", f"{base}/versions", north).json()
    assert [(v["version"], v["subject"]) for v in versions] == [
        (1, body["template"]["subject"]),
        (2, subject),
    ]

    made = {**parts, "template_id": template["id"]}
    del made["template"]
    mailing = stack.call("POST", "/v1/mailings", north, json=made)
    assert mailing.status_code == 201, mailing.text
    assert (mailing.json()["template_id"], mailing.json()["template_version"]) == (
        template["id"],
        2,
    )
    assert mailing.json()["subject"] == subject
    both = stack.call("POST", "/v1/mailings", north, json={**parts, "template_id": template["id"]})
    assert both.status_code == 422
    foreign = stack.call("POST", "/v1/mailings", south, json={**made, "directions": ["south"]})
    assert foreign.status_code == 422, foreign.text
    assert foreign.json()["errors"][0]["type"] == "unknown_reference"
    unknown = stack.call(
        "POST", "/v1/mailings", north, json={**made, "template_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 422
