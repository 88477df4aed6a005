"""The published event contract: an AsyncAPI document per owner of topics and the JSON Schema of
the envelope and of every registered event payload, generated from the registry, and the
compatibility rule that keeps a published (type, version) readable.

`clientele contract --check` (CI, through the test suite) fails when docs/asyncapi/ differs from
the code; `--write` rewrites it, and refuses a change that would break a reader of an event type
at a version already published: a removed or retyped field, or a field newly required. Such a
change needs a new schema version (a new EventSpec beside the old one).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clientele_shared.events.envelope import Envelope
from clientele_shared.events.registry import EventSpec, Registry

ASYNCAPI_VERSION = "3.0.0"
_NOISE = frozenset({"title", "description", "default", "examples"})


def schema_name(spec: EventSpec) -> str:
    """The file name of an event payload's schema: `<type>.v<version>.json`."""
    return f"{spec.name}.v{spec.version}.json"


def payload_schema(spec: EventSpec) -> dict[str, Any]:
    """The JSON Schema of a payload as it travels (pydantic's serialization schema)."""
    schema = spec.payload.model_json_schema(mode="serialization")
    schema["$id"] = schema_name(spec)
    schema["x-clientele-event"] = {"type": spec.name, "schema_version": spec.version}
    if spec.description:
        schema.setdefault("description", spec.description)
    return schema


def envelope_schema() -> dict[str, Any]:
    schema = Envelope.model_json_schema(mode="serialization")
    schema["$id"] = "envelope.json"
    return schema


def _message_id(spec: EventSpec) -> str:
    return f"{spec.name}.v{spec.version}".replace(".", "_")


def asyncapi(registry: Registry, owner: str) -> dict[str, Any]:
    """An AsyncAPI 3.0 document of the topics `owner` publishes and their messages."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in sorted(registry.published_by(owner), key=lambda t: t.name):
        specs = sorted(
            (s for s in registry.events.values() if s.topic == topic.name),
            key=lambda s: (s.name, s.version),
        )
        channel_id = topic.name.replace(".", "_")
        refs = {_message_id(s): {"$ref": f"#/components/messages/{_message_id(s)}"} for s in specs}
        channels[channel_id] = {
            "address": topic.name,
            "description": topic.description,
            "messages": refs,
            "x-clientele-consumers": sorted(topic.consumers),
            "x-clientele-partitions": topic.partitions,
        }
        operations[f"publish_{channel_id}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{message}"} for message in refs
            ],
        }
        for spec in specs:
            messages[_message_id(spec)] = {
                "name": spec.name,
                "title": f"{spec.name} v{spec.version}",
                "summary": spec.description or spec.payload.__doc__ or spec.name,
                "contentType": "application/json",
                "headers": {
                    "type": "object",
                    "properties": {
                        "event_type": {"const": spec.name},
                        "schema_version": {"const": str(spec.version)},
                        "correlation_id": {"type": "string"},
                    },
                },
                "payload": {
                    "description": "The envelope; its `payload` is the event's schema.",
                    "allOf": [
                        {"$ref": "schemas/envelope.json"},
                        {"properties": {"payload": {"$ref": f"schemas/{schema_name(spec)}"}}},
                    ],
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": "aggregate id"}}},
            }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": f"Clientele {owner} events",
            "version": "1",
            "description": "Domain events on Apache Kafka; see docs/integration.md.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


def owners(registry: Registry) -> list[str]:
    return sorted({topic.owner for topic in registry.topics.values()})


def documents(registry: Registry) -> dict[str, str]:
    """Every file of docs/asyncapi/ (relative path -> text)."""
    files = {"schemas/envelope.json": _dump(envelope_schema())}
    for spec in registry.events.values():
        files[f"schemas/{schema_name(spec)}"] = _dump(payload_schema(spec))
    for owner in owners(registry):
        if registry.published_by(owner):
            files[f"{owner}.asyncapi.json"] = _dump(asyncapi(registry, owner))
    return files


def _dump(document: Mapping[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True) + "\n"


@dataclass(frozen=True)
class Breach:
    """A change that breaks readers of an event type at a published version."""

    schema: str
    reason: str

    def __str__(self) -> str:
        return f"{self.schema}: {self.reason}"


def _resolved(schema: Any, defs: Mapping[str, Any], depth: int = 0) -> Any:
    """The schema with local `$ref`s replaced and descriptive keywords dropped."""
    if depth > 50:
        return schema
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            return _resolved(defs.get(ref.removeprefix("#/$defs/"), {}), defs, depth + 1)
        return {
            key: _resolved(value, defs, depth + 1)
            for key, value in schema.items()
            if key not in _NOISE and key != "$defs"
        }
    if isinstance(schema, list):
        return [_resolved(item, defs, depth + 1) for item in schema]
    return schema


def breaches(name: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> Iterator[Breach]:
    """Why a reader of `old` could not read what `new` allows (nothing: compatible)."""
    old_props = _resolved(old.get("properties", {}), old.get("$defs", {}))
    new_props = _resolved(new.get("properties", {}), new.get("$defs", {}))
    for field in sorted(old_props.keys() - new_props.keys()):
        yield Breach(name, f"field {field!r} removed")
    for field in sorted(old_props.keys() & new_props.keys()):
        if old_props[field] != new_props[field]:
            yield Breach(name, f"field {field!r} changed its type or constraints")
    newly_required = set(new.get("required", [])) - set(old.get("required", []))
    for field in sorted(newly_required):
        yield Breach(name, f"field {field!r} is newly required")


def check(registry: Registry, directory: Path) -> tuple[list[str], list[Breach]]:
    """The files that differ from the code, and the incompatible changes among them."""
    wanted = documents(registry)
    differing: list[str] = []
    broken: list[Breach] = []
    present = {
        str(path.relative_to(directory)) for path in directory.rglob("*.json") if path.is_file()
    }
    for relative in sorted(present | wanted.keys()):
        path = directory / relative
        current = path.read_text() if path.exists() else None
        if current == wanted.get(relative):
            continue
        differing.append(relative)
        if relative.startswith("schemas/") and current is not None:
            if relative not in wanted:
                broken.append(Breach(relative, "a published schema version was removed"))
            else:
                broken.extend(breaches(relative, json.loads(current), json.loads(wanted[relative])))
    return differing, broken


def write(registry: Registry, directory: Path) -> list[Breach]:
    """Rewrite the documents unless that would break a published version (then nothing)."""
    _, broken = check(registry, directory)
    if broken:
        return broken
    wanted = documents(registry)
    for relative, text in wanted.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return []


def main(argv: list[str] | None = None) -> int:
    """`python -m clientele_shared.events.contract [--write] [DIR]` (default docs/asyncapi)."""
    import argparse

    from clientele_shared.events.catalog import REGISTRY

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", nargs="?", type=Path, default=Path("docs/asyncapi"))
    parser.add_argument("--write", action="store_true", help="rewrite the documents")
    args = parser.parse_args(argv)
    if args.write:
        broken = write(REGISTRY, args.directory)
    else:
        differing, broken = check(REGISTRY, args.directory)
        for relative in differing:
            print(f"differs from the code: {relative}")
        if differing and not broken:
            print("run `make contract` to rewrite them")
            return 1
    for breach in broken:
        print(f"incompatible: {breach} (register a new schema version instead)")
    return 1 if broken else 0


if __name__ == "__main__":
    raise SystemExit(main())
