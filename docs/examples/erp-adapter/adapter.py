"""An example ERP adapter for Clientele: keeps a copy of the client base, publishes documents back.

Only aiokafka and the standard library, so an ERP team can read it end to end and port it (to
1C's own Kafka connector, Java, .NET...). See README.md beside it and docs/integration.md.

    python adapter.py follow  --bootstrap HOST:PORT --db erp.sqlite3 [--group erp.adapter]
                              [--topic clientele.directory.organizations.state]
    python adapter.py publish --bootstrap HOST:PORT --type erp.invoice.issued --document FILE.json

``follow`` reads a state topic (the full topic, or a direction's feed
``clientele.feed.<direction>.state``) from the group's committed offsets, keeps the newest
snapshot of every record in SQLite, and commits the offsets only after the SQLite transaction:
a crash replays some records, and the (version, revision) guard makes a replay change nothing.

``publish`` sends one document (invoice, payment, shipment) to ``clientele.erp.documents`` in
Clientele's envelope. Its event id is derived from the document's id and content, so sending the
same document twice (a retry after a timeout) is one document for Clientele, while a corrected
document (new content, same id) replaces the old one.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import signal
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

DOCUMENTS = "clientele.erp.documents"
ORGANIZATIONS_STATE = "clientele.directory.organizations.state"
NAMESPACE = uuid.UUID("5b0a3c1e-8f4e-4c55-9a57-0e2a3d1f6c70")
"""Event ids of this adapter's documents are uuid5(NAMESPACE, type + document id + content)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS clients (
    id TEXT PRIMARY KEY,
    legal_name TEXT,
    inn TEXT,
    directions TEXT NOT NULL,
    deleted INTEGER NOT NULL,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    record TEXT NOT NULL
)
"""


def apply(db: sqlite3.Connection, key: str, value: bytes | None) -> None:
    """One state record: a tombstone deletes; a snapshot is kept only if newer."""
    if value is None:
        db.execute("DELETE FROM clients WHERE id = ?", (key,))
        return
    envelope = json.loads(value)
    record = envelope["payload"]
    version, revision = int(record.get("version", 0)), int(record.get("revision", 0))
    db.execute(
        """
        INSERT INTO clients (id, legal_name, inn, directions, deleted, version, revision, record)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (id) DO UPDATE SET
            legal_name = excluded.legal_name, inn = excluded.inn,
            directions = excluded.directions, deleted = excluded.deleted,
            version = excluded.version, revision = excluded.revision, record = excluded.record
        WHERE (excluded.version, excluded.revision) > (clients.version, clients.revision)
        """,
        (
            key,
            record.get("legal_name"),
            record.get("inn"),
            ",".join(envelope.get("directions", [])),
            1 if record.get("deleted") else 0,
            version,
            revision,
            json.dumps(record, ensure_ascii=False),
        ),
    )


async def follow(bootstrap: str, topic: str, group: str, database: Path) -> None:
    """Follow a state topic into SQLite until SIGTERM/SIGINT."""
    db = sqlite3.connect(database)
    db.execute(SCHEMA)
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        enable_auto_commit=False,  # commit after our own transaction, never before
        auto_offset_reset="earliest",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await consumer.start()
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=500, max_records=1000)
            if not batch:
                continue
            with db:  # one SQLite transaction per batch
                for records in batch.values():
                    for record in records:
                        apply(db, (record.key or b"").decode(), record.value)
            await consumer.commit()
    finally:
        await consumer.stop()
        db.close()


def envelope(event_type: str, document: dict[str, Any]) -> dict[str, Any]:
    """Clientele's envelope around a document (docs/asyncapi/schemas/envelope.json)."""
    content = json.dumps(document, sort_keys=True, ensure_ascii=False)
    digest = hashlib.sha256(content.encode()).hexdigest()
    return {
        "event_id": str(
            uuid.uuid5(NAMESPACE, f"{event_type}\n{document['document_id']}\n{digest}")
        ),
        "type": event_type,
        "schema_version": 1,
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "producer": "erp",
        "correlation_id": f"erp-{document['document_id']}",
        "actor": {"subject": "erp-adapter", "kind": "service"},
        "directions": [],
        "aggregate_id": str(document["document_id"]),
        "payload": document,
    }


async def publish(bootstrap: str, event_type: str, document: dict[str, Any]) -> str:
    """Send one document, acknowledged by every in-sync replica; return its event id."""
    value = envelope(event_type, document)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
    await producer.start()
    try:
        await producer.send_and_wait(
            DOCUMENTS,
            json.dumps(value, ensure_ascii=False).encode(),
            key=value["aggregate_id"].encode(),
            headers=[("event_type", event_type.encode()), ("schema_version", b"1")],
        )
    finally:
        await producer.stop()
    return str(value["event_id"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["follow", "publish"])
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", default=ORGANIZATIONS_STATE)
    parser.add_argument("--group", default="erp.adapter")
    parser.add_argument("--db", type=Path, default=Path("erp.sqlite3"))
    parser.add_argument("--type", help="erp.invoice.issued, erp.payment.received, ...")
    parser.add_argument("--document", type=Path, help="the document's payload as JSON")
    args = parser.parse_args()
    if args.command == "follow":
        asyncio.run(follow(args.bootstrap, args.topic, args.group, args.db))
    else:
        if not args.type or not args.document:
            parser.error("publish needs --type and --document")
        document = json.loads(args.document.read_text(encoding="utf-8"))
        print(asyncio.run(publish(args.bootstrap, args.type, document)))


if __name__ == "__main__":
    main()
