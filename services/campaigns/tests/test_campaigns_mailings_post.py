"""Paper post (ADR 46) and fax (ADR 47): a mailing's letters, envelopes and faxes as PDFs,
opened and read back; the fax gateway's callback."""

from __future__ import annotations

import asyncio
import io
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import httpx
import pytest
from campaigns_testkit import create_event
from clientele_campaigns.app import PUBLISHES
from clientele_campaigns.mailings import service as mailings
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import metadata
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.events.catalog import (
    DELIVERIES,
    MAILING_RESULTS,
    REGISTRY,
    notification_requests,
)
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.notifier import (
    DELIVERY_FAILED,
    DELIVERY_SUCCEEDED,
    DeliveryResult,
)
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import LocalDiskStorage
from clientele_testkit.infra import Infrastructure
from clientele_testkit.stack import Stack, running
from mailings_testkit import PUBLIC_URL, consent, contact, premises
from PIL import Image
from pypdf import PdfReader

NORTH = ["north"]
REQUESTS = notification_requests("campaigns")
ADDRESS = {"text": "620014, г. Екатеринбург, ул. Малышева, д. 36, оф. 12", "postal_code": "620014"}


@pytest.fixture(scope="module")
def files_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mailing-prints")


@pytest.fixture(scope="module")
def stack(
    infra: Infrastructure,
    service_env: dict[str, str],
    campaigns_migrated: str,
    issuer: TokenIssuer,
    tmp_path_factory: pytest.TempPathFactory,
    files_dir: Path,
) -> Iterator[Stack]:
    """The service without its mailing worker, keeping files on local disk."""
    env = {
        **service_env,
        "RUN_MAILING_WORKER": "false",
        "PUBLIC_BASE_URL": PUBLIC_URL,
        "ATTACHMENT_STORAGE": "local",
        "ATTACHMENTS_DIR": str(files_dir),
    }
    logs = tmp_path_factory.mktemp("mailings-post")
    with running("campaigns", infra, env, campaigns_migrated, issuer, logs) as stack:
        yield stack


def _print(stack: Stack, files_dir: Path, fax: bool = False) -> int:
    """The worker's printing (or fax hand-over) step, in this process, on the service's
    database and files."""

    async def run() -> int:
        settings = CampaignsSettings(
            database_url=stack.database_url,  # type: ignore[arg-type]
            kafka_bootstrap_servers=stack.bootstrap,
            public_base_url=PUBLIC_URL,
            toner_cartridge_yield=1000,
        )
        runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
        try:
            assert await mailings.prepare_due(runtime)
            storage = LocalDiskStorage(files_dir)
            if fax:
                return await mailings.hand_over(runtime, settings, storage)
            return await mailings.print_due(runtime, settings, storage)
        finally:
            await runtime.producer.stop()
            await runtime.engine.dispose()

    return asyncio.run(run())


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (1600, 240), (20, 60, 160)).save(out, "PNG")
    return out.getvalue()


def _body(organizations: list[uuid.UUID], **extra: Any) -> dict[str, Any]:
    return {
        "title": "Приглашение на семинар",
        "directions": NORTH,
        "channel": "post",
        "post": {
            "envelope": "c5",
            "sender_name": "ООО «Клиентела»",
            "sender_address": "123456, г. Москва, ул. Тверская, д. 1",
        },
        "template": {
            "subject": "Приглашение для {{ organization.name }}",
            "text": "{{ person.salutation }}!\n\nПриглашаем вас на семинар «Налоги-2027».",
        },
        "audience": {"kind": "organizations", "organization_ids": [str(o) for o in organizations]},
        **extra,
    }


def _fonts(reader: PdfReader) -> dict[str, bool]:
    """Each font the pages use, and whether its program is embedded."""
    found: dict[str, bool] = {}
    for page in reader.pages:
        for ref in page["/Resources"]["/Font"].values():
            font = ref.get_object()
            descriptor = font.get("/FontDescriptor")
            embedded = descriptor is not None and any(
                key in descriptor.get_object() for key in ("/FontFile", "/FontFile2", "/FontFile3")
            )
            found[str(font["/BaseFont"])] = embedded
    return found


def test_a_paper_mailing_prints_letters_and_envelopes(stack: Stack, files_dir: Path) -> None:
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    uralsib = premises(stack, "ООО «Уральские зори»", postal_address=ADDRESS)
    nowhere = premises(stack, "ООО «Без адреса»", postal_address={"text": "г. Тверь"})
    ivan = contact(stack, first="Иван", middle="Петрович", last="Иванов", organization=uralsib)
    anna = contact(stack, first="Анна", middle="Сергеевна", last="Кузнецова", organization=uralsib)
    emailed = contact(stack, first="Олег", middle=None, last="Почтов", organization=uralsib)
    lost = contact(stack, first="Нина", middle=None, last="Нет", organization=nowhere)
    for person in (ivan, anna, lost):
        consent(stack, person, channel="post")
    consent(stack, emailed)  # consent to e-mail is none to paper

    event = create_event(stack, NORTH)
    body = _body([uralsib, nowhere], campaign_id=event["id"])
    created = stack.call("POST", "/v1/mailings", north, json=body)
    assert created.status_code == 201, created.text
    mailing = created.json()
    assert mailing["channel"] == "post"
    base = f"/v1/mailings/{mailing['id']}"
    assert stack.call("GET", f"{base}/print/letters", north).status_code == 404

    report = stack.call("GET", f"{base}/validation", north).json()
    assert report["recipients"] == 2
    reasons = {(e["person_id"], e["reason"]) for e in report["exclusions"]}
    assert reasons == {(str(emailed), "no_consent"), (str(lost), "no_address")}

    upload = stack.call(
        "PUT",
        f"{base}/letterhead",
        north,
        files={"file": ("бланк.png", _png(), "image/png")},
        if_match=created.headers["ETag"],
    )
    assert upload.status_code == 200, upload.text
    assert upload.json()["letterhead"]["width"] == 1600
    sent = stack.call("POST", f"{base}/send", north, if_match=upload.headers["ETag"])
    assert sent.status_code == 200, sent.text

    assert _print(stack, files_dir) == 2
    done = stack.call("GET", base, north).json()
    assert done["status"] == "done"
    assert done["totals"]["printed"] == 2
    assert done["printed"]["letters"] == 2
    assert done["printed"]["pages"] == 2
    assert done["printed"]["sheets"] == 2
    assert done["printed"]["envelopes"] == 2
    assert done["printed"]["envelope"] == "c5"
    assert Decimal(done["printed"]["toner_cartridges"]) == Decimal("0.00")  # 4 of 1,000 pages

    letters = stack.call("GET", f"{base}/print/letters", north)
    assert letters.status_code == 200
    assert letters.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(letters.content))
    assert len(reader.pages) == 2
    assert all(abs(float(p.mediabox.width) - 595.28) < 1 for p in reader.pages)  # A4
    first, second = (page.extract_text() for page in reader.pages)
    by_person = {"Иванову Ивану Петровичу" in t: t for t in (first, second)}
    ivan_letter, anna_letter = by_person[True], by_person[False]
    assert "Уважаемый Иван Петрович!" in ivan_letter
    assert "Приглашение для ООО «Уральские зори»" in ivan_letter
    assert "ул. Малышева" in ivan_letter
    assert "620014" in ivan_letter
    assert "Уважаемая Анна Сергеевна!" in anna_letter
    assert "Кузнецовой Анне Сергеевне" in anna_letter
    assert all(p["/Resources"].get("/XObject") for p in reader.pages)  # the letterhead image
    fonts = _fonts(reader)
    assert fonts
    assert all(fonts.values()), fonts
    assert all("PTSans" in name for name in fonts)

    envelopes = stack.call("GET", f"{base}/print/envelopes", north)
    reader = PdfReader(io.BytesIO(envelopes.content))
    assert len(reader.pages) == 2
    width, height = (float(x) for x in reader.pages[0].mediabox.upper_right)
    assert (round(width / 72 * 25.4), round(height / 72 * 25.4)) == (229, 162)  # C5
    text = reader.pages[0].extract_text()
    lines = [line.strip() for line in text.splitlines()]
    assert "От кого: ООО «Клиентела»" in lines
    assert "Индекс: 123456" in lines
    assert "Куда: г. Екатеринбург" in lines
    kuda = lines.index("Куда: г. Екатеринбург")
    assert lines[kuda + 1 : kuda + 5] == ["ул. Малышева", "д. 36", "оф. 12", "620014"]
    assert all(embedded for embedded in _fonts(reader).values())

    figures = stack.call("GET", f"/v1/campaigns/{event['id']}/effectiveness", north).json()
    used = {q["unit"]: Decimal(q["quantity"]) for q in figures["consumables_used"]}
    assert used == {
        "mailing_envelope_c5": 2,
        "mailing_sheet_a4": 2,
        "mailing_toner_cartridge": Decimal("0.00"),
    }

    south = stack.user(["south"])
    assert stack.call("GET", f"{base}/print/letters", south).status_code == 404
    recipients = stack.call("GET", f"{base}/recipients", north, params={"status": "printed"})
    assert {r["person_id"] for r in recipients.json()} == {str(ivan), str(anna)}


def test_bad_paper_mailings_are_refused(stack: Stack) -> None:
    north = stack.user(NORTH)
    organization = premises(stack, "ООО «Проверка»", postal_address=ADDRESS)
    no_text = _body([organization])
    no_text["template"] = {"subject": "Тема", "html": "<p>только HTML</p>"}
    no_post = _body([organization])
    del no_post["post"]
    bad_sender = _body([organization])
    bad_sender["post"] = {**bad_sender["post"], "sender_address": "г. Москва, без индекса"}
    bad_format = _body([organization])
    bad_format["post"] = {**bad_format["post"], "envelope": "a3"}
    for body in (no_text, no_post, bad_sender, bad_format):
        answer = stack.call("POST", "/v1/mailings", north, json=body)
        assert answer.status_code == 422, answer.text
        assert answer.headers["content-type"].startswith("application/problem+json")

    created = stack.call("POST", "/v1/mailings", north, json=_body([organization]))
    base = f"/v1/mailings/{created.json()['id']}"
    not_image = stack.call(
        "PUT",
        f"{base}/letterhead",
        north,
        files={"file": ("x.png", b"\x89PNG\r\n\x1a\n\0\0\0garbage", "image/png")},
        if_match=created.headers["ETag"],
    )
    assert not_image.status_code == 422, not_image.text
    south = stack.call(
        "PUT",
        f"{base}/letterhead",
        stack.user(["south"]),
        files={"file": ("x.png", _png(), "image/png")},
        if_match=created.headers["ETag"],
    )
    assert south.status_code == 404
    emailed = stack.call(
        "POST",
        "/v1/mailings",
        north,
        json={
            **_body([organization]),
            "channel": "email",
            "post": None,
        },
    )
    email_base = f"/v1/mailings/{emailed.json()['id']}"
    refused = stack.call(
        "PUT",
        f"{email_base}/letterhead",
        north,
        files={"file": ("x.png", _png(), "image/png")},
        if_match=emailed.headers["ETag"],
    )
    assert refused.status_code == 422
    current = stack.call("GET", base, north).json()
    assert current["letterhead"] is None
    assert current["version"] == 1


def _gateway_result(
    stack: Stack, person_id: uuid.UUID, status: str, channel: str = "webhook", **extra: Any
) -> Envelope:
    """The notifier's result on a fax request (its webhook to the gateway)."""
    payload = DeliveryResult(
        delivery_id=uuid.uuid4(),
        request_id=uuid.uuid4(),
        requester="campaigns",
        idempotency_key=extra.pop("key"),
        kind="mailing.fax",
        channel=channel,  # type: ignore[arg-type]
        recipient="fax-gateway",
        attempts=1,
        reason=extra.pop("reason", None),
    )
    envelope = Envelope(
        type=status,
        schema_version=REGISTRY.spec_for(status, payload).version,
        producer="notifier",
        correlation_id=uuid.uuid4().hex,
        aggregate_id=str(person_id),
        payload=payload.model_dump(mode="json"),
    )
    stack.send(DELIVERIES, [envelope])
    return envelope


def test_a_fax_mailing_goes_through_the_notifier_and_the_gateway_reports(
    stack: Stack, files_dir: Path
) -> None:
    stack.execute("UPDATE mailings SET status = 'cancelled' WHERE status <> 'done'")
    north = stack.user(NORTH)
    faxed = premises(stack, "АО «Факсимиле»", postal_address=None, fax="+74951234567")
    no_fax = premises(stack, "ООО «Без факса»", postal_address=ADDRESS)
    ivan = contact(stack, first="Иван", middle="Петрович", last="Иванов", organization=faxed)
    anna = contact(stack, first="Анна", middle="Сергеевна", last="Кузнецова", organization=faxed)
    oleg = contact(stack, first="Олег", middle="Ильич", last="Олегов", organization=faxed)
    lost = contact(stack, first="Нина", middle=None, last="Нет", organization=no_fax)
    for person in (ivan, anna, oleg, lost):
        consent(stack, person, channel="fax")
    body = _body([faxed, no_fax])
    body["channel"] = "fax"
    del body["post"]
    created = stack.call("POST", "/v1/mailings", north, json=body)
    assert created.status_code == 201, created.text
    mailing_id = created.json()["id"]
    base = f"/v1/mailings/{mailing_id}"
    report = stack.call("GET", f"{base}/validation", north).json()
    assert report["recipients"] == 3
    assert [(e["person_id"], e["reason"], e["detail"]) for e in report["exclusions"]] == [
        (str(lost), "no_address", "no fax number")
    ]
    sent = stack.call("POST", f"{base}/send", north, if_match=created.headers["ETag"])
    assert sent.status_code == 200, sent.text

    assert _print(stack, files_dir, fax=True) == 3
    keys = {f"mailing:{mailing_id}:{p}" for p in (ivan, anna, oleg)}
    requests = {e.payload["idempotency_key"]: e.payload for e in stack.events(REQUESTS, keys, 3)}
    request = requests[f"mailing:{mailing_id}:{ivan}"]
    assert request["channel"] == "webhook"
    assert request["recipients"] == [
        {"email": None, "employee_id": None, "endpoint": "fax-gateway", "name": ANY}
    ]
    data = request["data"]
    assert data["fax_number"] == "+74951234567"
    document = data["document_url"].removeprefix(PUBLIC_URL)
    result = data["result_url"].removeprefix(PUBLIC_URL)
    fetched = httpx.get(stack.url + document, timeout=30)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(fetched.content))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "Уважаемый Иван Петрович!" in text
    assert "Факс: +74951234567" in text
    assert "Иванову Ивану Петровичу" in text

    # the gateway took them: the notifier's success is no result; its failure is one
    taken = _gateway_result(stack, ivan, DELIVERY_SUCCEEDED, key=f"mailing:{mailing_id}:{ivan}")
    refused = _gateway_result(
        stack, oleg, DELIVERY_FAILED, key=f"mailing:{mailing_id}:{oleg}", reason="HTTP 400"
    )
    for envelope in (taken, refused):
        stack.wait_until(
            "SELECT count(*) FROM inbox WHERE event_id = :e", 1, "the result", e=envelope.event_id
        )
    states = {r["person_id"]: r for r in stack.call("GET", f"{base}/recipients", north).json()}
    assert states[str(ivan)]["status"] == "queued"
    assert states[str(oleg)]["status"] == "failed"

    # the gateway's callbacks, each authenticated by its own signed URL
    anna_data = requests[f"mailing:{mailing_id}:{anna}"]["data"]
    anna_result = stack.url + anna_data["result_url"].removeprefix(PUBLIC_URL)
    bad = [
        document + "/result",  # the document's token records nothing
        result.replace("/result", ""),  # the result's token fetches nothing (GET below)
        result[:-12] + ("AAAA" if not result[:-12].endswith("AAAA") else "BBBB") + "/result",
        "/v1/public/fax/nonsense/result",
    ]
    assert httpx.post(stack.url + bad[0], json={"status": "sent"}, timeout=30).status_code == 404
    assert httpx.get(stack.url + bad[1], timeout=30).status_code == 404
    for path in bad[2:]:
        assert httpx.post(stack.url + path, json={"status": "sent"}, timeout=30).status_code == 404
    for wrong in (
        {"status": "delivered"},
        {"status": "sent", "pages": -1},
        {"status": "sent", "x": 1},
    ):
        answer = httpx.post(stack.url + result, json=wrong, timeout=30)
        assert answer.status_code == 422
    ok = httpx.post(stack.url + result, json={"status": "sent", "pages": 1}, timeout=30)
    assert ok.status_code == 204
    busy = httpx.post(anna_result, json={"status": "busy", "detail": "занято"}, timeout=30)
    assert busy.status_code == 204
    again = httpx.post(stack.url + result, json={"status": "failed"}, timeout=30)
    assert again.status_code == 204  # recorded once: the later report changes nothing
    states = {r["person_id"]: r for r in stack.call("GET", f"{base}/recipients", north).json()}
    assert (states[str(ivan)]["status"], states[str(ivan)]["detail"]) == (
        "sent",
        "fax sent; 1 pages",
    )
    assert (states[str(anna)]["status"], states[str(anna)]["detail"]) == (
        "failed",
        "fax busy; занято",
    )
    stack.wait_until("SELECT count(*) FROM outbox WHERE topic = :t", 0, "relay", t=MAILING_RESULTS)
    found = stack.events(MAILING_RESULTS, {str(p) for p in (ivan, anna, oleg)}, 4, 3000)
    assert sorted(
        (e.payload["channel"], e.payload["result"], e.payload["reason"]) for e in found
    ) == [
        ("fax", "failed", "HTTP 400"),
        ("fax", "failed", "fax busy; занято"),
        ("fax", "sent", "fax sent; 1 pages"),
    ]  # the gateway's second report on a recipient: no second result
    assert stack.call("GET", f"{base}/print/letters", stack.user(["south"])).status_code == 404
