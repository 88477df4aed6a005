"""Where attachment bytes live: an interface, local disk by default (S3 can be added behind it),
and the size and content-type checks every upload passes."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Protocol

from clientele_interactions.settings import InteractionsSettings


class AttachmentStorage(Protocol):
    """Stores blobs by key. Keys are made by the service (``<interaction>/<attachment>``)."""

    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes: ...

    async def delete(self, key: str) -> None: ...


class LocalDiskStorage:
    """Blobs as files under one directory; written to a temporary file and renamed (atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"invalid storage key {key!r}")
        return path

    def _put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, key, data)

    async def get(self, key: str) -> bytes:
        return await asyncio.to_thread(self._path(key).read_bytes)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


def create_storage(settings: InteractionsSettings) -> AttachmentStorage:
    if settings.attachment_storage == "local":
        return LocalDiskStorage(settings.attachments_dir)
    raise ValueError(f"unknown attachment storage {settings.attachment_storage!r}")


# --- checks ----------------------------------------------------------------------------------


class AttachmentRefused(ValueError):
    """An upload that is too large or whose content type is not accepted."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
    "application/zip": (b"PK\x03\x04", b"PK\x05\x06"),
    "application/msword": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "application/vnd.ms-excel": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "application/vnd.ms-powerpoint": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
    "application/vnd.ms-outlook": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",),
}
_OOXML_PREFIX = "application/vnd.openxmlformats-officedocument."
_ODF_PREFIX = "application/vnd.oasis.opendocument."
_EXECUTABLES = (b"MZ", b"\x7fELF", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xce", b"#!")


def _signatures(content_type: str) -> tuple[bytes, ...] | None:
    if content_type.startswith((_OOXML_PREFIX, _ODF_PREFIX)):
        return _SIGNATURES["application/zip"]
    if content_type == "image/webp":
        return (b"RIFF",)
    return _SIGNATURES.get(content_type)


def normalize_content_type(value: str | None) -> str:
    return (value or "application/octet-stream").split(";", 1)[0].strip().lower()


def check_attachment(data: bytes, content_type: str, *, max_bytes: int, allowed: list[str]) -> str:
    """Refuse an attachment that is too large, of a type not accepted, or whose bytes do not
    look like its declared type (executables never pass). Answers the normalized type."""
    if len(data) > max_bytes:
        raise AttachmentRefused(
            413, "Content Too Large", f"An attachment may have at most {max_bytes} bytes."
        )
    if not data:
        raise AttachmentRefused(422, "Empty Attachment", "The attachment is empty.")
    kind = normalize_content_type(content_type)
    if kind not in {normalize_content_type(item) for item in allowed}:
        raise AttachmentRefused(
            415, "Unsupported Media Type", f"Attachments of type {kind!r} are not accepted."
        )
    if data.startswith(_EXECUTABLES):
        raise AttachmentRefused(
            415, "Unsupported Media Type", "Executable content is not accepted."
        )
    signatures = _signatures(kind)
    if signatures is not None and not data.startswith(signatures):
        raise AttachmentRefused(
            415, "Unsupported Media Type", f"The content does not look like {kind}."
        )
    if kind.startswith("text/"):
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            try:
                data.decode("cp1251")
            except UnicodeDecodeError:
                raise AttachmentRefused(
                    415, "Unsupported Media Type", "The text is not UTF-8 or Windows-1251."
                ) from None
    return kind


_UNSAFE = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]+')


def safe_filename(name: str | None) -> str:
    """A file name fit to keep and to send back in Content-Disposition."""
    cleaned = _UNSAFE.sub("_", unicodedata.normalize("NFC", name or "")).strip(" .")
    return cleaned[:255] or "attachment"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
