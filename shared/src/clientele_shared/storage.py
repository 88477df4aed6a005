"""Where uploaded files live — local disk (default) or an S3-compatible object store — and the
size and content-type checks every upload passes (interaction attachments, documents of a
marketing event).

Bytes stream both ways: an upload is checked chunk by chunk, then written chunk by chunk (to S3
as one PUT, or as a multipart upload once it outgrows ``S3_PART_SIZE``); a download is read
chunk by chunk. Nothing holds a whole file in memory except what was already in memory (the
attachments of a parsed e-mail).
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import UploadFile
from pydantic import Field, SecretStr, model_validator

from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import get_logger
from clientele_shared.settings import ServiceSettings

if TYPE_CHECKING:
    from types_aiobotocore_s3 import S3Client
    from types_aiobotocore_s3.type_defs import CompletedPartTypeDef

log = get_logger(__name__)

CHUNK = 1 << 20
"""Bytes read or written at a time."""


class BlobMissing(LookupError):
    """No bytes are stored under the key."""


class StorageUnavailable(RuntimeError):
    """The object store did not answer or refused the request."""


class AttachmentStorage(Protocol):
    """Stores blobs by key. Keys are made by the service (``<owner record>/<file id>``)."""

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> None:
        """Store the bytes ``chunks`` yields under ``key`` (all or nothing)."""

    async def get(self, key: str) -> AsyncIterator[bytes]:
        """The stored bytes, a chunk at a time (BlobMissing when there are none)."""

    async def delete(self, key: str) -> None:
        """Remove the bytes under ``key`` (nothing when there are none)."""


async def single(data: bytes) -> AsyncIterator[bytes]:
    """Bytes already in memory as a chunk stream."""
    yield data


class LocalDiskStorage:
    """Blobs as files under one directory; written to a temporary file and renamed (atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root) or path == self.root:
            raise ValueError(f"invalid storage key {key!r}")
        return path

    def _temporary(self, path: Path) -> tuple[BinaryIO, str]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        return os.fdopen(fd, "wb"), tmp

    @staticmethod
    def _finish(handle: BinaryIO, tmp: str, path: Path) -> None:
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
        os.replace(tmp, path)

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> None:
        path = self._path(key)
        handle, tmp = await asyncio.to_thread(self._temporary, path)
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(self._finish, handle, tmp, path)
        except BaseException:
            handle.close()
            await asyncio.to_thread(Path(tmp).unlink, missing_ok=True)
            raise

    async def get(self, key: str) -> AsyncIterator[bytes]:
        try:
            handle = await asyncio.to_thread(self._path(key).open, "rb")
        except FileNotFoundError:
            raise BlobMissing(key) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                while chunk := await asyncio.to_thread(handle.read, CHUNK):
                    yield chunk
            finally:
                handle.close()

        return chunks()

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, missing_ok=True)


class S3Storage:
    """Blobs as objects of one bucket of an S3-compatible store (AWS S3, MinIO, Ceph RGW,
    Yandex Object Storage...), through aiobotocore. The object keeps the content type; an
    upload larger than ``part_size`` goes as a multipart upload (aborted when it fails)."""

    def __init__(
        self,
        *,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        addressing_style: str = "path",
        part_size: int = 8 << 20,
        timeout: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.part_size = part_size
        self._options: dict[str, Any] = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "aws_access_key_id": access_key_id,
            "aws_secret_access_key": secret_access_key,
            "config": AioConfig(
                s3={"addressing_style": addressing_style},
                connect_timeout=timeout,
                read_timeout=timeout,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        }
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: S3Client | None = None
        self._opening = asyncio.Lock()

    async def client(self) -> S3Client:
        """The one client of this storage, opened on first use."""
        async with self._opening:
            if self._client is not None:
                return self._client
            stack = contextlib.AsyncExitStack()
            client: S3Client = await stack.enter_async_context(
                get_session().create_client("s3", **self._options)
            )
            self._client, self._stack = client, stack
            return client

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = self._client = None

    async def run(self) -> None:
        """Lives as long as the service (a background task): closes the client at its stop."""
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    def _key(self, key: str) -> str:
        return self.prefix + key

    async def put(self, key: str, chunks: AsyncIterable[bytes], *, content_type: str) -> None:
        client = await self.client()
        bucket, name = self.bucket, self._key(key)
        buffer = bytearray()
        upload_id: str | None = None
        parts: list[CompletedPartTypeDef] = []

        async def send_part(data: bytes) -> None:
            nonlocal upload_id
            if upload_id is None:
                started = await client.create_multipart_upload(
                    Bucket=bucket, Key=name, ContentType=content_type
                )
                upload_id = started["UploadId"]
            number = len(parts) + 1
            sent = await client.upload_part(
                Bucket=bucket, Key=name, UploadId=upload_id, PartNumber=number, Body=data
            )
            parts.append({"PartNumber": number, "ETag": sent["ETag"]})

        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= self.part_size:
                    await send_part(bytes(buffer[: self.part_size]))
                    del buffer[: self.part_size]
            if upload_id is None:
                await client.put_object(
                    Bucket=bucket, Key=name, Body=bytes(buffer), ContentType=content_type
                )
                return
            if buffer:
                await send_part(bytes(buffer))
            await client.complete_multipart_upload(
                Bucket=bucket, Key=name, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
        except BaseException as exc:
            if upload_id is not None:
                with contextlib.suppress(BotoCoreError, ClientError):
                    await client.abort_multipart_upload(Bucket=bucket, Key=name, UploadId=upload_id)
            if isinstance(exc, BotoCoreError | ClientError):
                raise StorageUnavailable(f"S3 upload of {key} failed: {exc}") from exc
            raise

    async def get(self, key: str) -> AsyncIterator[bytes]:
        client = await self.client()
        try:
            response = await client.get_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise BlobMissing(key) from None
            raise StorageUnavailable(f"S3 download of {key} failed: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(f"S3 download of {key} failed: {exc}") from exc
        body = response["Body"]

        async def chunks() -> AsyncIterator[bytes]:
            async with body:
                async for chunk in body.iter_chunks(CHUNK):
                    yield chunk

        return chunks()

    async def delete(self, key: str) -> None:
        client = await self.client()
        try:
            await client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError) as exc:
            raise StorageUnavailable(f"S3 delete of {key} failed: {exc}") from exc


DEFAULT_ATTACHMENT_TYPES = (
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.ms-excel",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/zip",
    "application/vnd.ms-outlook",
    "message/rfc822",
    "text/plain",
    "text/csv",
    "text/calendar",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)


class AttachmentStorageSettings(ServiceSettings):
    """The settings of a service that keeps uploaded files (the same variables everywhere)."""

    attachment_storage: Literal["local", "s3"] = "local"
    attachments_dir: Path = Path(".state/attachments")
    """Where ``local`` storage keeps the bytes."""
    s3_endpoint_url: str | None = None
    """An S3-compatible store (MinIO, Ceph, a cloud's); none: AWS S3 of ``S3_REGION``."""
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    """Without a key pair botocore's default chain applies (AWS_* variables, a pod's role)."""
    s3_addressing_style: Literal["path", "virtual", "auto"] = "path"
    s3_key_prefix: str = Field(default="", max_length=200)
    s3_part_size: int = Field(default=8 << 20, ge=5 << 20, le=5 << 30)
    """Uploads larger than this go as multipart uploads of parts this large (S3: at least
    5 MiB)."""
    s3_timeout: float = Field(default=60.0, gt=0)
    attachment_max_bytes: int = Field(default=10_485_760, ge=1)
    attachment_content_types: list[str] = Field(default_factory=lambda: [*DEFAULT_ATTACHMENT_TYPES])

    @model_validator(mode="after")
    def _storage_complete(self) -> AttachmentStorageSettings:
        if self.attachment_storage == "s3" and not self.s3_bucket:
            raise ValueError("ATTACHMENT_STORAGE=s3 needs S3_BUCKET")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key):
            raise ValueError("give both S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY, or neither")
        return self


def create_storage(settings: AttachmentStorageSettings) -> AttachmentStorage:
    if settings.attachment_storage == "s3":
        assert settings.s3_bucket is not None  # the settings validate it
        return S3Storage(
            bucket=settings.s3_bucket,
            prefix=settings.s3_key_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=(
                settings.s3_access_key_id.get_secret_value() if settings.s3_access_key_id else None
            ),
            secret_access_key=(
                settings.s3_secret_access_key.get_secret_value()
                if settings.s3_secret_access_key
                else None
            ),
            addressing_style=settings.s3_addressing_style,
            part_size=settings.s3_part_size,
            timeout=settings.s3_timeout,
        )
    return LocalDiskStorage(settings.attachments_dir)


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
_HEAD = 16
"""Leading bytes kept for the signature checks (the longest signature is 8)."""


def _signatures(content_type: str) -> tuple[bytes, ...] | None:
    if content_type.startswith((_OOXML_PREFIX, _ODF_PREFIX)):
        return _SIGNATURES["application/zip"]
    if content_type == "image/webp":
        return (b"RIFF",)
    return _SIGNATURES.get(content_type)


def normalize_content_type(value: str | None) -> str:
    return (value or "application/octet-stream").split(";", 1)[0].strip().lower()


@dataclass(frozen=True)
class Upload:
    """A checked upload: its normalized type, size, digest, and its bytes from the start."""

    content_type: str
    size: int
    sha256: str
    chunks: Callable[[], AsyncIterator[bytes]]


class UploadCheck:
    """The checks of one upload, fed a chunk at a time: the size limit (413), an accepted type
    (415), bytes that look like the type and are no executable (415), text in UTF-8 or
    Windows-1251 (415), not empty (422); and the SHA-256 digest."""

    def __init__(self, content_type: str | None, *, max_bytes: int, allowed: list[str]) -> None:
        self.kind = normalize_content_type(content_type)
        if self.kind not in {normalize_content_type(item) for item in allowed}:
            raise AttachmentRefused(
                415,
                "Unsupported Media Type",
                f"Attachments of type {self.kind!r} are not accepted.",
            )
        self.max_bytes = max_bytes
        self.size = 0
        self.head = b""
        self.digest = hashlib.sha256()
        self.decoders = (
            [codecs.getincrementaldecoder(name)() for name in ("utf-8", "cp1251")]
            if self.kind.startswith("text/")
            else []
        )

    def _decode(self, chunk: bytes, final: bool) -> None:
        alive = []
        for decoder in self.decoders:
            try:
                decoder.decode(chunk, final=final)
            except UnicodeDecodeError:
                continue
            alive.append(decoder)
        self.decoders = alive
        if not alive:
            raise AttachmentRefused(
                415, "Unsupported Media Type", "The text is not UTF-8 or Windows-1251."
            )

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise AttachmentRefused(
                413, "Content Too Large", f"An attachment may have at most {self.max_bytes} bytes."
            )
        if len(self.head) < _HEAD:
            self.head += chunk[: _HEAD - len(self.head)]
        self.digest.update(chunk)
        if self.decoders:
            self._decode(chunk, final=False)

    def finish(self) -> tuple[str, int, str]:
        """The normalized type, the size and the hex digest, or AttachmentRefused."""
        if not self.size:
            raise AttachmentRefused(422, "Empty Attachment", "The attachment is empty.")
        if self.head.startswith(_EXECUTABLES):
            raise AttachmentRefused(
                415, "Unsupported Media Type", "Executable content is not accepted."
            )
        signatures = _signatures(self.kind)
        if signatures is not None and not self.head.startswith(signatures):
            raise AttachmentRefused(
                415, "Unsupported Media Type", f"The content does not look like {self.kind}."
            )
        if self.decoders:
            self._decode(b"", final=True)
        return self.kind, self.size, self.digest.hexdigest()


GENERIC_TYPES = frozenset(
    {"application/octet-stream", "binary/octet-stream", "application/unknown"}
)
"""Declarations that name no type (what mail programs send when they do not know it)."""


_EXTENSIONS = mimetypes.MimeTypes()
"""Python's own table of extensions (not the host's /etc/mime.types: the same everywhere)."""


def sniff_content_type(data: bytes, filename: str | None) -> str | None:
    """The type of bytes declared only as ``application/octet-stream``: the one the file name's
    extension names when the content matches it (the signature checks of UploadCheck; text
    must be UTF-8 or Windows-1251); for a name without a known extension, the one type whose
    signature the content starts with. None when neither tells or they disagree."""
    head = data[:_HEAD]
    if head.startswith(_EXECUTABLES):
        return None
    guessed, _ = _EXTENSIONS.guess_type(filename or "", strict=False)
    if guessed is not None:
        kind = normalize_content_type(guessed)
        signatures = _signatures(kind)
        if signatures is not None and head.startswith(signatures):
            return kind
        if kind.startswith("text/") and _is_text(data):
            return kind
        return None  # the name says another type than the content: not guessed on
    by_content = {kind for kind, signatures in _SIGNATURES.items() if head.startswith(signatures)}
    return by_content.pop() if len(by_content) == 1 else None


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    for encoding in ("utf-8", "cp1251"):
        try:
            data.decode(encoding)
        except UnicodeDecodeError:
            continue
        return True
    return False


def check_attachment(
    data: bytes,
    content_type: str | None,
    *,
    max_bytes: int,
    allowed: list[str],
    filename: str | None = None,
) -> Upload:
    """Check bytes already in memory (see UploadCheck); a declaration that names no type
    (``application/octet-stream``) is resolved by the content and the file name."""
    if len(data) > max_bytes:  # before the type: a large upload is refused for its size
        raise AttachmentRefused(
            413, "Content Too Large", f"An attachment may have at most {max_bytes} bytes."
        )
    if normalize_content_type(content_type) in GENERIC_TYPES:
        content_type = sniff_content_type(data, filename) or content_type
    check = UploadCheck(content_type, max_bytes=max_bytes, allowed=allowed)
    check.feed(data)
    kind, size, sha256 = check.finish()
    return Upload(kind, size, sha256, lambda: single(data))


async def check_upload(file: UploadFile, *, max_bytes: int, allowed: list[str]) -> Upload:
    """Check an uploaded file a chunk at a time (it is spooled by the server already); the
    checked upload reads it again from the start."""
    check = UploadCheck(file.content_type, max_bytes=max_bytes, allowed=allowed)
    while chunk := await file.read(CHUNK):
        check.feed(chunk)
    kind, size, sha256 = check.finish()

    async def chunks() -> AsyncIterator[bytes]:
        await file.seek(0)
        while chunk := await file.read(CHUNK):
            yield chunk

    return Upload(kind, size, sha256, chunks)


def refused(exc: AttachmentRefused) -> ProblemError:
    """The problem answer of a refused upload (413, 415 or 422)."""
    kind = exc.title.lower().replace(" ", "-")
    return ProblemError(exc.status, exc.title, exc.detail, kind=kind)


_UNSAFE = re.compile(r'[\x00-\x1f\x7f-\x9f/\\:*?"<>|]+')
_INVISIBLE = frozenset({"Cf", "Cs", "Co", "Cn"})
"""Format characters (bidi overrides such as U+202E that show `exe.txt` as `txt.exe`, zero-width
characters), surrogates, private-use and unassigned code points: dropped from file names."""


def safe_filename(name: str | None) -> str:
    """A file name fit to keep and to send back in Content-Disposition."""
    visible = "".join(
        char
        for char in unicodedata.normalize("NFC", name or "")
        if unicodedata.category(char) not in _INVISIBLE
    )
    cleaned = _UNSAFE.sub("_", visible).strip(" .")
    return cleaned[:255] or "attachment"
