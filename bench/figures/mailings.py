"""Mailings (issue 15): a mailing to 100,000 recipients prepared and handed over to the
notifier's intake topic.

The campaigns service runs as a process (`clientele serve campaigns`) on the bench's own
database with its consumers off and its relay and mailing worker on: the read models (persons,
contacts, organizations, a directory list) and the consent ledger are seeded straight into its
tables once per bench.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import httpx

from bench.figures.directory_import import _peak_mb
from bench.figures.services import issuer, service_database, start_service
from bench.registry import Context, Metric, Target, figure

DIRECTION = "bench"
ORGANIZATIONS = 1000
FIRST_NAMES = ("Иван", "Анна", "Пётр", "Мария", "Саша", "Женя", "John")
PATRONYMICS = ("Петрович", "Сергеевна", "Ильич", "Ивановна", None, None, None)
TEMPLATE = {
    "subject": "{{ person.salutation }}, новости {{ organization.name }}",
    "html": (
        "<p>{{ person.salutation }}!</p>"
        "<p>Письмо {{ person.dative.first_middle }} из {{ organization.name }}"
        " (ИНН {{ organization.inn | default('—') }}).</p>"
        + "<p>Текст письма о новых условиях поставки.</p>" * 20
        + '<p><a href="{{ unsubscribe_url }}">Отписаться</a></p>'
    ),
    "text": "{{ person.salutation }}!\n" + "Текст письма. " * 60 + "\n{{ unsubscribe_url }}",
}


async def seeded(ctx: Context) -> tuple[str, uuid.UUID]:
    """The database with `recipients` consenting accountants over 1,000 organizations of one
    static list; made once per bench. (url, list id)."""
    recipients = int(ctx.params["recipients"])
    key = f"mailings:seeded:{recipients}"
    url = await service_database(ctx, "campaigns")
    if key in ctx.shared:
        list_id: uuid.UUID = ctx.shared[key]
        return url, list_id
    list_id = uuid.uuid4()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO organizations (organization_id, legal_name, inn, directions, version)"
            " SELECT gen_random_uuid(), 'ООО «Клиент ' || i || '»', lpad(i::text, 10, '7'),"
            " $1, 1 FROM generate_series(1, $2::int) i",
            [DIRECTION],
            ORGANIZATIONS,
        )
        await conn.execute(
            "INSERT INTO directory_lists (list_id, name) VALUES ($1, 'Все клиенты')", list_id
        )
        await conn.execute(
            "INSERT INTO directory_list_members (list_id, organization_id)"
            " SELECT $1, organization_id FROM organizations",
            list_id,
        )
        await conn.execute(
            """
            WITH orgs AS (SELECT array_agg(organization_id) AS ids FROM organizations),
            people AS (
                SELECT gen_random_uuid() AS person_id, i, orgs.ids[1 + i % $4::int] AS org
                FROM generate_series(1, $1::int) i, orgs
            ),
            persons_written AS (
                INSERT INTO persons (person_id, last_name, first_name, middle_name, directions,
                    version)
                SELECT person_id, 'Иванов-' || i, ($2::text[])[1 + i % 7],
                    ($3::text[])[1 + i % 7], ARRAY['bench'], 1
                FROM people
            )
            INSERT INTO mailing_contacts (person_id, emails, employments, organization_ids,
                version, state_revision)
            SELECT person_id, ARRAY['client' || i || '@d' || (i % 500) || '.bench.test'],
                jsonb_build_array(jsonb_build_object('organization_id', org,
                    'position', 'Главный бухгалтер', 'emails', '[]'::jsonb)),
                ARRAY[org], 1, 1
            FROM people
            """,
            recipients,
            list(FIRST_NAMES),
            list(PATRONYMICS),
            ORGANIZATIONS,
        )
        await conn.execute(
            "INSERT INTO consents (person_id, channel, granted, source, actor_subject)"
            " SELECT person_id, 'email', true, 'import', 'bench' FROM mailing_contacts"
        )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    ctx.shared[key] = list_id
    return url, list_id


async def _reset(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("TRUNCATE mailing_recipients, mailings, outbox CASCADE")
    finally:
        await conn.close()


async def _scalar(url: str, sql: str, *args: object) -> object:
    conn = await asyncpg.connect(url)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()


@figure(
    "mailings-handover",
    "Mailings: a mailing to 100,000 recipients prepared and handed to the notifier",
    kind="figure",
    description=(
        "A fresh `clientele serve campaigns` process (consumers off; relay and mailing worker"
        " on, batches of 1,000) over a database of `recipients` consenting persons of 1,000"
        " organizations on one static list (Cyrillic names, several declined by the template,"
        " some of unknown gender). Timed from `POST /v1/mailings/{id}/send` to the moment every"
        " recipient's personalised delivery request (subject, HTML and text parts of about"
        " 2 KB, an unsubscribe link) is on `clientele.campaigns.notifications`, the notifier's"
        " intake (all recipients queued, the outbox empty); `prepare_s` until the recipients"
        " were resolved and kept. Peak memory: the service process's VmHWM. Baseline:"
        " `pg-copy` (COPY of 100,000 small rows)."
    ),
    metrics=[
        Metric(
            "handover_s",
            "send → every request on the notifier's topic",
            "s",
            target=Target("<", 60),
            higher_is_better=False,
        ),
        Metric("prepare_s", "send → recipients resolved and kept", "s", higher_is_better=False),
        Metric(
            "recipients_per_s",
            "recipients handed over per second",
            "recipients/s",
            baseline="pg-copy.rows_per_s",
        ),
        Metric(
            "peak_mb",
            "peak RSS of the service",
            "MB",
            target=Target("<", 500),
            higher_is_better=False,
        ),
    ],
    params={"recipients": 100_000},
    quick_params={"recipients": 10_000},
    timeout=900,
)
async def mailings_handover(ctx: Context) -> dict[str, float]:
    recipients = int(ctx.params["recipients"])
    url, list_id = await seeded(ctx)
    await _reset(url)
    service = await start_service(
        ctx,
        "campaigns",
        url,
        RUN_CONSUMERS="false",
        PUBLIC_BASE_URL="https://bench.test",
        MAILING_BATCH_SIZE="1000",
        MAILING_POLL_INTERVAL="0.05",
    )
    token = issuer(ctx).mint(
        "bench-marketer", roles=["marketer"], directions=[DIRECTION], ttl_seconds=3600
    )
    headers = {"Authorization": f"Bearer {token}"}
    body = {
        "title": "Новости для бухгалтеров",
        "directions": [DIRECTION],
        "template": TEMPLATE,
        "audience": {"kind": "list", "list_id": str(list_id), "positions": ["бухгалтер"]},
    }
    async with httpx.AsyncClient(timeout=120) as client:
        created = await client.post(f"{service.url}/v1/mailings", json=body, headers=headers)
        if created.status_code != 201:
            raise RuntimeError(f"create answered {created.status_code}: {created.text[:500]}")
        mailing = created.json()["id"]
        started = time.perf_counter()
        sent = await client.post(
            f"{service.url}/v1/mailings/{mailing}/send", headers={**headers, "If-Match": 'W/"1"'}
        )
        if sent.status_code != 200:
            raise RuntimeError(f"send answered {sent.status_code}: {sent.text[:500]}")
    prepared = None
    while True:
        service.check()
        status = await _scalar(url, "SELECT status FROM mailings WHERE id = $1", uuid.UUID(mailing))
        if prepared is None and status in ("sending", "done"):
            prepared = time.perf_counter() - started
        if status == "done" and await _scalar(url, "SELECT count(*) FROM outbox") == 0:
            break
        await asyncio.sleep(0.2)
    handover = time.perf_counter() - started
    queued = await _scalar(
        url,
        "SELECT count(*) FROM mailing_recipients WHERE mailing_id = $1 AND status = 'queued'",
        uuid.UUID(mailing),
    )
    if queued != recipients:
        ctx.notes.append(f"{queued} of {recipients} recipients queued")
    peak = _peak_mb(service)
    await service.stop()
    return {
        "handover_s": handover,
        "prepare_s": prepared or handover,
        "recipients_per_s": recipients / handover,
        "peak_mb": peak,
    }
