"""The delivery worker: claims due deliveries, sends them on their channel, records the outcome.

One loop per notifier process; replicas share the work through the claim (SKIP LOCKED). A
delivery is claimed (committed) before it is sent and marked after: a crash in between leaves
it claimed until its lease ends, then it is sent again (see ADR 7 for what that means per
channel).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from typing import Any

import httpx
from clientele_shared.events.schemas.notifications import Channel, NotificationRequested
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from prometheus_client import Counter
from sqlalchemy import Row

from clientele_notifier.channels.email import (
    AttachmentError,
    SmtpPool,
    build_message,
    load_attachments,
)
from clientele_notifier.channels.ratelimit import DomainRateLimiter
from clientele_notifier.channels.webhook import (
    SecretBox,
    SecretsNotConfiguredError,
    WebhookGuard,
    WebhookSender,
)
from clientele_notifier.deliveries import service
from clientele_notifier.deliveries.rules import (
    DeliveryRetryPolicy,
    DeliveryState,
    EmailTarget,
    EmployeeContact,
    Outcome,
    SendResult,
    UnknownTemplateError,
    after_failure,
    email_target,
    rate_limit_key,
    render,
)
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.webhooks import service as webhooks
from clientele_notifier.webhooks.rules import WebhookUrlPolicy

log = get_logger(__name__)

DELIVERIES_FINISHED = Counter(
    "clientele_notifier_deliveries_total",
    "Delivery attempts by channel and outcome",
    ["channel", "outcome"],
)


SENT_CHANNELS = (Channel.EMAIL, Channel.WEBHOOK)
"""The channels the worker sends on (in-app deliveries are made when accepted)."""


class DeliveryWorker:
    def __init__(self, runtime: ServiceRuntime, settings: NotifierSettings) -> None:
        self.runtime = runtime
        self.settings = settings
        self.http = httpx.AsyncClient(follow_redirects=False)
        self.smtp = SmtpPool(settings, size=settings.worker_concurrency)
        self.guard = WebhookGuard(
            WebhookUrlPolicy.from_settings(
                settings.webhook_allowed_hosts,
                allow_http=settings.webhook_allow_http,
                allow_private_networks=settings.webhook_allow_private_networks,
            )
        )
        self.webhooks = WebhookSender(self.http, self.guard)
        self.secrets = SecretBox(
            settings.webhook_secrets_key.get_secret_value()
            if settings.webhook_secrets_key
            else None
        )
        self.limiter = DomainRateLimiter(runtime.redis, settings.rate_limit_per_domain)
        self._slots = asyncio.Semaphore(settings.worker_concurrency)
        self._next_digest = 0.0
        self.policies = {
            Channel.EMAIL: DeliveryRetryPolicy(
                settings.email_max_attempts,
                settings.email_initial_backoff,
                settings.retry_max_backoff,
            ),
            Channel.WEBHOOK: DeliveryRetryPolicy(
                settings.webhook_max_attempts,
                settings.webhook_initial_backoff,
                settings.retry_max_backoff,
            ),
        }

    async def run(self) -> None:
        """Deliver e-mail and webhook calls until cancelled (in-app deliveries are made when
        their request is accepted)."""
        try:
            while True:
                try:
                    handled = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database or Redis may come back
                    log.warning("delivery worker failed, retrying", error=repr(exc))
                    handled = 0
                if handled < self.settings.worker_batch_size:
                    await asyncio.sleep(self.settings.worker_poll_interval)
        finally:
            await self.close()

    async def close(self) -> None:
        await self.smtp.close()
        await self.http.aclose()

    async def run_once(self) -> int:
        """Compile due digests, then claim and send a batch; how many were claimed."""
        if time.monotonic() >= self._next_digest:
            self._next_digest = time.monotonic() + self.settings.digest_check_interval
            await service.compile_digests(runtime=self.runtime, now=dt.datetime.now(dt.UTC))
        rows = await service.claim_due(
            runtime=self.runtime,
            batch=self.settings.worker_batch_size,
            lease_seconds=self.settings.delivery_lease,
            channels=SENT_CHANNELS,
        )
        if rows:
            await asyncio.gather(*(self._guarded(row) for row in rows))
        return len(rows)

    async def _guarded(self, row: Row[Any]) -> None:
        async with self._slots:
            try:
                await self.process(row)
            except Exception as exc:  # leave it claimed: the lease brings it back
                log.error("delivery failed unexpectedly", delivery_id=str(row.id), error=repr(exc))

    async def process(self, row: Row[Any]) -> None:
        """Send one claimed e-mail or webhook delivery and record the outcome."""
        channel = Channel(row.channel)
        request = NotificationRequested.model_validate(row.content)
        policy = self.policies[channel]
        endpoint = None
        if channel is Channel.WEBHOOK:
            endpoint = await self._endpoint(row.recipient)
            if endpoint is not None and endpoint.max_attempts:
                policy = DeliveryRetryPolicy(
                    endpoint.max_attempts, policy.initial_backoff, policy.max_backoff
                )
        if row.attempts > policy.max_attempts:
            await self._record(row, policy, self._claimed_too_often(row), 0.0)
            return
        address = row.recipient
        target = None
        if channel is Channel.EMAIL:
            target = email_target(row.recipient, row.employee_id, self._employee(row))
            if target.refusal is not None:
                await self._record(row, policy, target.refusal, 0.0, suppressed=target.suppressed)
                return
            address = target.address or row.recipient
        wait = await self.limiter.acquire(rate_limit_key(channel, address))
        if wait is not None:
            await self._defer([row], wait)
            return
        started = time.perf_counter()
        try:
            if target is not None:
                result = await self._send_email(row, request, target)
            else:
                result = await self._send_webhook(row, request, endpoint)
        except UnknownTemplateError as exc:
            result = SendResult(Outcome.FAILED, str(exc))
        await self._record(row, policy, result, (time.perf_counter() - started) * 1000)

    @staticmethod
    def _employee(row: Row[Any]) -> EmployeeContact | None:
        """What the employees read model knows of the delivery's employee (claim's join)."""
        if row.employee_active is None:
            return None
        return EmployeeContact(row.employee_email, row.employee_name, row.employee_active)

    @staticmethod
    def _claimed_too_often(row: Row[Any]) -> SendResult:
        return SendResult(
            Outcome.FAILED,
            f"claimed {row.attempts} times without an outcome (the worker stopped while sending)",
        )

    async def _defer(self, rows: list[Row[Any]], wait: float) -> None:
        until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=wait)
        await service.defer(runtime=self.runtime, rows=rows, until=until)
        for row in rows:
            DELIVERIES_FINISHED.labels(row.channel, Outcome.DEFERRED.value).inc()

    async def _record(
        self,
        row: Row[Any],
        policy: DeliveryRetryPolicy,
        result: SendResult,
        duration_ms: float,
        *,
        suppressed: bool = False,
    ) -> None:
        """Record the attempt's outcome; ``suppressed``: not sent on purpose, never retried."""
        if result.outcome is Outcome.SENT:
            state, next_at = DeliveryState.SENT, None
        elif suppressed:
            state, next_at = DeliveryState.SUPPRESSED, None
        else:
            state = after_failure(policy, row.attempts, result)
            delay = policy.backoff(row.attempts)
            if result.retry_after is not None:
                delay = max(delay, min(result.retry_after, policy.max_backoff))
            next_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delay)
        detail = result.detail or result.outcome.value
        if state is DeliveryState.DEAD and result.outcome is Outcome.RETRY:
            detail = f"gave up after {row.attempts} attempts: {detail}"
        recorded = await service.finish(
            runtime=self.runtime,
            row=row,
            state=state,
            detail=detail,
            duration_ms=duration_ms,
            next_attempt_at=next_at,
        )
        if not recorded:
            log.warning("a delivery's claim was lost before its outcome", delivery_id=str(row.id))
        DELIVERIES_FINISHED.labels(row.channel, state.value).inc()
        log.info(
            "delivery attempt",
            delivery_id=str(row.id),
            channel=row.channel,
            attempt=row.attempts,
            state=state.value,
            detail=detail[:300],
        )

    async def _send_email(
        self, row: Row[Any], request: NotificationRequested, target: EmailTarget
    ) -> SendResult:
        content = render(
            request.subject, request.text, request.html, request.template, request.data
        )
        try:
            attachments = await load_attachments(
                list(request.attachments), self.http, self.settings.attachment_max_bytes
            )
        except AttachmentError as exc:
            return SendResult(Outcome.RETRY if exc.transient else Outcome.FAILED, str(exc))
        address = target.address or row.recipient
        name = next(
            (r.name for r in request.recipients if r.email and r.email.lower() == address),
            target.name,
        )
        message = build_message(
            delivery_id=row.id,
            sender=self.settings.smtp_from,
            to=address,
            to_name=name,
            content=content,
            reply_to=request.reply_to,
            list_unsubscribe=request.list_unsubscribe,
            attachments=attachments,
            message_id_domain=self.settings.message_id_domain,
        )
        return await self.smtp.send(message)

    async def _endpoint(self, name: str) -> Row[Any] | None:
        return await webhooks.endpoint_named(runtime=self.runtime, name=name)

    async def _send_webhook(
        self, row: Row[Any], request: NotificationRequested, endpoint: Row[Any] | None
    ) -> SendResult:
        if endpoint is None:
            return SendResult(Outcome.FAILED, f"no webhook endpoint named {row.recipient!r}")
        if not endpoint.enabled:
            return SendResult(Outcome.FAILED, f"webhook endpoint {row.recipient!r} is disabled")
        try:
            secret = self.secrets.decrypt(endpoint.secret_encrypted)
        except SecretsNotConfiguredError as exc:
            return SendResult(Outcome.RETRY, str(exc))
        content = render(
            request.subject, request.text, request.html, request.template, request.data
        )
        body = json.dumps(
            {
                "id": str(row.id),
                "type": request.kind,
                "request_id": str(row.request_id),
                "requester": row.requester,
                "subject": content.subject,
                "text": content.text,
                "html": content.html,
                "data": request.data,
                "requested_at": row.requested_at.isoformat(),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        return await self.webhooks.send(
            endpoint.url,
            secret,
            body,
            row.id,
            min(endpoint.timeout_seconds, self.settings.webhook_timeout),
        )
