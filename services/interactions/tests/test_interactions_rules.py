"""Unit tests of the contact log's rules (no I/O)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clientele_interactions.analytics.rules import checked_interval
from clientele_interactions.capture.parsing import CapturedMessage
from clientele_interactions.capture.rules import occurred_at
from clientele_interactions.log.rules import (
    CounterpartyBlocked,
    Rejected,
    StateConflict,
    apply_patch,
    check_draft,
    completion_values,
    is_overdue,
    next_contact_values,
    refuse_blocked,
    reminder_time,
    suggest_next,
)
from clientele_interactions.log.schemas import (
    CompleteRequest,
    Interaction,
    InteractionDraft,
    InteractionPatch,
    NextContact,
)
from clientele_interactions.results.rules import ResultDefinition
from clientele_shared.http.concurrency import versions_in_if_match
from clientele_shared.storage import (
    AttachmentRefused,
    BlobMissing,
    LocalDiskStorage,
    UploadCheck,
    check_attachment,
    safe_filename,
)
from pydantic import ValidationError

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
EMPLOYEE = uuid.uuid4()
RESULTS = {
    ("call", "reached"): ResultDefinition(
        kind="call",
        code="reached",
        label="Reached",
        position=1,
        follow_up_days=None,
        active=True,
        version=1,
    ),
    ("call", "no_answer"): ResultDefinition(
        kind="call",
        code="no_answer",
        label="No answer",
        position=2,
        follow_up_days=1,
        active=True,
        version=1,
    ),
    ("call", "old"): ResultDefinition(
        kind="call",
        code="old",
        label="Old",
        position=3,
        follow_up_days=None,
        active=False,
        version=2,
    ),
}


def _interaction(**changes: object) -> Interaction:
    data: dict[str, object] = {
        "id": uuid.uuid4(),
        "organization_id": uuid.uuid4(),
        "kind": "call",
        "direction": "out",
        "status": "planned",
        "occurred_at": None,
        "due_at": NOW + timedelta(days=1),
        "duration_seconds": None,
        "person_ids": [],
        "responsible_employee_id": EMPLOYEE,
        "subject": "Renewal",
        "notes": None,
        "result": None,
        "deal_id": None,
        "campaign_id": None,
        "follows_id": None,
        "source": "api",
        "version": 1,
        "created_at": NOW,
        "created_by": "alice",
        "updated_at": NOW,
        "updated_by": "alice",
    }
    data.update(changes)
    return Interaction.model_validate(data)


def test_a_draft_needs_timezones_and_a_consistent_state() -> None:
    org = uuid.uuid4()
    with pytest.raises(ValidationError, match="timezone"):
        InteractionDraft.model_validate(
            {
                "organization_id": org,
                "kind": "call",
                "subject": "x",
                "occurred_at": "2026-01-01T10:00:00",
            }
        )
    with pytest.raises(ValidationError, match="due_at"):
        InteractionDraft.model_validate(
            {"organization_id": org, "kind": "call", "subject": "x", "status": "planned"}
        )
    with pytest.raises(ValidationError, match="occurred_at, not due_at"):
        InteractionDraft.model_validate(
            {"organization_id": org, "kind": "call", "subject": "x", "due_at": NOW}
        )
    draft = InteractionDraft.model_validate(
        {
            "organization_id": org,
            "kind": "call",
            "subject": "  x  ",
            "occurred_at": "2026-01-01T10:00:00+03:00",
        }
    )
    assert draft.occurred_at == datetime(2026, 1, 1, 7, 0, tzinfo=UTC)
    assert draft.subject == "x"
    for moment in ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00+03:00", "9999-12-31T23:59:59Z"):
        with pytest.raises(ValidationError, match="between 1900 and 2199"):
            InteractionDraft.model_validate(
                {"organization_id": org, "kind": "call", "subject": "x", "occurred_at": moment}
            )
        with pytest.raises(ValidationError, match="between 1900 and 2199"):
            InteractionDraft.model_validate(
                {
                    "organization_id": org,
                    "kind": "call",
                    "subject": "x",
                    "status": "planned",
                    "due_at": moment,
                    "responsible_employee_id": str(uuid.uuid4()),
                }
            )


def test_results_belong_to_a_kind_and_must_be_active() -> None:
    base = {"organization_id": uuid.uuid4(), "subject": "x"}
    check_draft(
        InteractionDraft.model_validate({**base, "kind": "call", "result": "reached"}), RESULTS
    )
    for kind, result in (("meeting", "reached"), ("call", "old"), ("call", "nope")):
        with pytest.raises(Rejected, match="unknown result"):
            check_draft(
                InteractionDraft.model_validate({**base, "kind": kind, "result": result}), RESULTS
            )


def test_the_next_contact_follows_the_previous_one() -> None:
    previous = _interaction(status="done", occurred_at=NOW, due_at=None, person_ids=[uuid.uuid4()])
    values = next_contact_values(
        previous.model_dump(), NextContact(due_at=NOW + timedelta(days=2)), NOW
    )
    assert values["status"] == "planned"
    assert values["follows_id"] == previous.id
    assert values["responsible_employee_id"] == EMPLOYEE
    assert values["person_ids"] == previous.person_ids
    assert values["subject"] == "Follow-up: Renewal"
    again = next_contact_values(
        {**previous.model_dump(), "subject": values["subject"]},
        NextContact(due_at=NOW + timedelta(days=2)),
        NOW,
    )
    assert again["subject"] == "Follow-up: Renewal", "no Follow-up: Follow-up:"
    with pytest.raises(Rejected, match="future"):
        next_contact_values(previous.model_dump(), NextContact(due_at=NOW), NOW)
    with pytest.raises(Rejected, match="responsible"):
        next_contact_values(
            {**previous.model_dump(), "responsible_employee_id": None},
            NextContact(due_at=NOW + timedelta(days=1)),
            NOW,
        )


def test_a_result_with_follow_up_days_suggests_the_next_contact() -> None:
    done = _interaction(status="done", occurred_at=NOW, due_at=None, result="no_answer")
    suggestion = suggest_next(done, RESULTS, now=NOW)
    assert suggestion is not None
    assert suggestion.due_at == NOW + timedelta(days=1)
    assert suggest_next(done.model_copy(update={"result": "reached"}), RESULTS, now=NOW) is None


def test_patching_a_planned_contact() -> None:
    current = _interaction()
    new_due = NOW + timedelta(days=3)
    outcome = apply_patch(
        current, InteractionPatch(due_at=new_due, notes="bring slides"), RESULTS, now=NOW
    )
    assert outcome.rescheduled_from == current.due_at
    assert outcome.values["due_at"] == new_due
    assert outcome.values["overdue_at"] is None
    assert set(outcome.changes) == {"due_at", "notes"}
    same = apply_patch(current, InteractionPatch(subject="Renewal"), RESULTS, now=NOW)
    assert same.changes == {}
    with pytest.raises(Rejected):
        apply_patch(current, InteractionPatch(result="reached"), RESULTS, now=NOW)
    with pytest.raises(Rejected):
        apply_patch(current, InteractionPatch.model_validate({"subject": None}), RESULTS, now=NOW)
    with pytest.raises(Rejected):
        apply_patch(current, InteractionPatch.model_validate({"due_at": None}), RESULTS, now=NOW)
    with pytest.raises(StateConflict):
        apply_patch(_interaction(status="cancelled"), InteractionPatch(notes="x"), RESULTS, now=NOW)


def test_patching_a_done_contact_checks_its_result_against_its_kind() -> None:
    done = _interaction(status="done", occurred_at=NOW, due_at=None, result="reached")
    with pytest.raises(Rejected, match="unknown result"):
        apply_patch(done, InteractionPatch(kind="meeting"), RESULTS, now=NOW)
    cleared = apply_patch(done, InteractionPatch.model_validate({"result": None}), RESULTS, now=NOW)
    assert cleared.changes == {"result": {"old": "reached", "new": None}}
    with pytest.raises(Rejected, match="due time"):
        apply_patch(done, InteractionPatch(due_at=NOW), RESULTS, now=NOW)


def test_a_done_contact_cannot_be_moved_into_the_future() -> None:
    done = _interaction(status="done", occurred_at=NOW, due_at=None)
    with pytest.raises(Rejected, match="in the future"):
        apply_patch(done, InteractionPatch(occurred_at=NOW + timedelta(days=1)), RESULTS, now=NOW)
    moved = apply_patch(
        done, InteractionPatch(occurred_at=NOW + timedelta(minutes=4)), RESULTS, now=NOW
    )
    assert moved.values == {"occurred_at": NOW + timedelta(minutes=4)}


def test_completing() -> None:
    values = completion_values(_interaction(), CompleteRequest(result="reached"), RESULTS, now=NOW)
    assert values == {"status": "done", "occurred_at": NOW, "result": "reached"}
    with pytest.raises(StateConflict):
        completion_values(
            _interaction(status="done", occurred_at=NOW), CompleteRequest(), RESULTS, now=NOW
        )
    with pytest.raises(Rejected):
        completion_values(
            _interaction(), CompleteRequest(occurred_at=NOW + timedelta(hours=1)), RESULTS, now=NOW
        )


def test_reminders_and_overdue() -> None:
    lead = timedelta(minutes=30)
    assert reminder_time(NOW + timedelta(hours=2), lead, NOW) == NOW + timedelta(minutes=90)
    assert reminder_time(NOW + timedelta(minutes=10), lead, NOW) == NOW
    assert reminder_time(NOW - timedelta(minutes=1), lead, NOW) is None
    assert is_overdue("planned", NOW, NOW)
    assert not is_overdue("planned", NOW + timedelta(seconds=1), NOW)
    assert not is_overdue("done", NOW - timedelta(days=1), NOW)


def test_if_match_parsing() -> None:
    assert versions_in_if_match('W/"3"') == {3}
    assert versions_in_if_match('"3", W/"4"') == {3, 4}
    assert versions_in_if_match("*") == set()
    assert versions_in_if_match("garbage") == set()


ALLOWED = ["application/pdf", "text/plain", "image/png"]


def test_attachment_checks() -> None:
    pdf = check_attachment(b"%PDF-1.7", "application/pdf; x=y", max_bytes=100, allowed=ALLOWED)
    assert (pdf.content_type, pdf.size) == ("application/pdf", 8)
    assert pdf.sha256 == hashlib.sha256(b"%PDF-1.7").hexdigest()
    text = check_attachment("привет".encode("cp1251"), "text/plain", max_bytes=100, allowed=ALLOWED)
    assert text.content_type == "text/plain"
    cases = [
        (b"%PDF-" + b"0" * 100, "application/pdf", 413),
        (b"\x89PNG", "image/png", 415),
        (b"GIF89a", "image/gif", 415),
        (b"\x7fELF....", "text/plain", 415),
        (b"", "text/plain", 422),
    ]
    for data, kind, status in cases:
        with pytest.raises(AttachmentRefused) as caught:
            check_attachment(data, kind, max_bytes=100, allowed=ALLOWED)
        assert caught.value.status == status, (data, kind)


@pytest.mark.parametrize(
    ("data", "filename", "expected"),
    [
        (b"%PDF-1.4 ...", "smbprn.00009008.KdcPjl.pdf", "application/pdf"),
        (b"%PDF-1.4 ...", "no-extension", "application/pdf"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 8, "offer.doc", "application/msword"),
        ("Счёт во вложении".encode("cp1251"), "note.txt", "text/plain"),
    ],
)
def test_an_octet_stream_declaration_is_resolved_by_the_content(
    data: bytes, filename: str, expected: str
) -> None:
    allowed = [*ALLOWED, "application/msword"]
    upload = check_attachment(
        data, "application/octet-stream", max_bytes=100, allowed=allowed, filename=filename
    )
    assert upload.content_type == expected


@pytest.mark.parametrize(
    ("data", "filename"),
    [
        (b"MZ\x90\x00 an executable", "invoice.txt"),
        (b"%PDF-1.4", "invoice.png"),  # the name's type does not match: not guessed on
        (b"\xff\xfe\x00\x00binary", "data.bin"),
        (b"text with \x00 NUL", "a.txt"),
    ],
)
def test_an_octet_stream_that_tells_nothing_stays_refused(data: bytes, filename: str) -> None:
    with pytest.raises(AttachmentRefused) as caught:
        check_attachment(
            data, "application/octet-stream", max_bytes=100, allowed=ALLOWED, filename=filename
        )
    assert caught.value.status == 415


def test_uploads_are_checked_a_chunk_at_a_time() -> None:
    text = "Привет, мир".encode()
    check = UploadCheck("text/plain", max_bytes=100, allowed=ALLOWED)
    for index in range(len(text)):  # every split of the UTF-8 sequences
        check.feed(text[index : index + 1])
    assert check.finish() == ("text/plain", len(text), hashlib.sha256(text).hexdigest())

    broken = UploadCheck("text/plain", max_bytes=1000, allowed=ALLOWED)
    broken.feed(b"ok ")
    with pytest.raises(AttachmentRefused) as caught:
        broken.feed(b"\x98\xff\xfe")  # neither UTF-8 nor Windows-1251
    assert caught.value.status == 415

    large = UploadCheck("application/pdf", max_bytes=10, allowed=ALLOWED)
    large.feed(b"%PDF-1")
    with pytest.raises(AttachmentRefused) as caught:
        large.feed(b"23456")
    assert caught.value.status == 413

    disguised = UploadCheck("application/pdf", max_bytes=100, allowed=ALLOWED)
    for chunk in (b"%P", b"DX-whatever"):
        disguised.feed(chunk)
    with pytest.raises(AttachmentRefused) as caught:
        disguised.finish()
    assert caught.value.status == 415


def test_file_names_are_made_safe() -> None:
    unsafe = safe_filename("../../etc/passwd")
    assert "/" not in unsafe
    assert not unsafe.startswith(".")
    assert safe_filename("отчёт: итог?.pdf") == "отчёт_ итог_.pdf"
    assert safe_filename(None) == "attachment"
    assert safe_filename("invoice\u202etxt.exe") == "invoicetxt.exe"
    assert safe_filename("a\u2066b\u200fc\x85d\ud800.pdf") == "abc_d.pdf"
    assert safe_filename("\u202e") == "attachment"


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_local_disk_storage_keeps_keys_inside_its_root(tmp_path: Path) -> None:
    storage = LocalDiskStorage(tmp_path)
    await storage.put("a/b", _chunks(b"da", b"ta"), content_type="text/plain")
    assert b"".join([chunk async for chunk in await storage.get("a/b")]) == b"data"
    await storage.delete("a/b")
    await storage.delete("a/b")
    with pytest.raises(BlobMissing):
        await storage.get("a/b")
    with pytest.raises(ValueError, match="invalid storage key"):
        await storage.put("../escape", _chunks(b"x"), content_type="text/plain")


def _files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def test_a_failed_local_upload_leaves_nothing(tmp_path: Path) -> None:
    async def failing() -> AsyncIterator[bytes]:
        yield b"partial"
        raise OSError("the client went away")

    storage = LocalDiskStorage(tmp_path)
    with pytest.raises(OSError, match="went away"):
        await storage.put("x/y", failing(), content_type="text/plain")
    assert _files(tmp_path) == []


@pytest.mark.parametrize(
    ("status", "direction", "org_blocked", "people", "refused"),
    [
        ("planned", "out", True, [], True),
        ("planned", "in", True, [], True),
        ("done", "out", True, [], True),
        ("done", "in", True, [], False),
        ("done", "out", False, [EMPLOYEE], True),
        ("done", "in", False, [EMPLOYEE], False),
        ("planned", "out", False, [], False),
    ],
)
def test_new_business_with_a_blocked_counterparty_is_refused(
    status: str, direction: str, org_blocked: bool, people: list[uuid.UUID], refused: bool
) -> None:
    org = uuid.uuid4()

    def check() -> None:
        refuse_blocked(
            status=status,
            direction=direction,
            organization_id=org,
            organization_blocked=org_blocked,
            blocked_person_ids=people,
        )

    if not refused:
        check()
        return
    with pytest.raises(CounterpartyBlocked) as caught:
        check()
    assert caught.value.organization_id == (org if org_blocked else None)
    assert caught.value.person_ids == people


def test_a_captured_mail_dated_before_1900_or_ahead_happened_now() -> None:
    def mail(sent_at: datetime | None) -> CapturedMessage:
        return CapturedMessage(format="msg", subject="x", sender=None, sent_at=sent_at)

    assert occurred_at(mail(datetime(1601, 1, 1, tzinfo=UTC)), NOW) == NOW  # FILETIME zero
    assert occurred_at(mail(NOW + timedelta(days=1)), NOW) == NOW
    assert occurred_at(mail(None), NOW) == NOW
    earlier = NOW - timedelta(days=3)
    assert occurred_at(mail(earlier), NOW) == earlier


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", "America", "zone.tab"])
def test_an_analytics_zone_that_is_no_zone_is_rejected(zone: str) -> None:
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(Rejected) as refused:
        checked_interval(since, since + timedelta(days=1), zone)
    assert refused.value.errors[0]["loc"] == ("query", "tz")
