"""Unit tests of the webhook URL guard (SSRF): which addresses are refused by default, what the
settings allow, and that a request is pinned to the address that was checked."""

from __future__ import annotations

import ipaddress
import re

import pytest
from clientele_notifier.channels.webhook import UnresolvableHostError, WebhookGuard, resolve
from clientele_notifier.settings import NotifierSettings
from clientele_notifier.webhooks.rules import (
    IPAddress,
    UrlRefusedError,
    WebhookUrlPolicy,
    address_kind,
)

STRICT = WebhookUrlPolicy()


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private"),
        ("172.20.0.5", "private"),
        ("192.168.1.10", "private"),
        ("100.64.0.1", "private"),
        ("fd12:3456::1", "private"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (an address under test, not a bind)
        ("224.0.0.1", "multicast"),
        ("192.0.2.1", "reserved"),
    ],
)
def test_address_kinds(address: str, kind: str | None) -> None:
    assert address_kind(ipaddress.ip_address(address)) == kind


def test_only_https_unless_http_is_allowed() -> None:
    assert STRICT.target("https://erp.example.com/hook").port == 443
    assert STRICT.target("https://erp.example.com:8443/hook").port == 8443
    for url in ("http://erp.example.com/hook", "ftp://erp.example.com/", "https:///nohost"):
        with pytest.raises(UrlRefusedError):
            STRICT.target(url)
    with pytest.raises(UrlRefusedError, match="not a valid URL"):
        STRICT.target("https://erp.example.com:99999/")
    relaxed = WebhookUrlPolicy(allow_http=True)
    assert relaxed.target("http://ERP.example.com./hook").host == "erp.example.com"
    assert relaxed.target("http://erp.example.com/hook").port == 80


def test_refusals_and_what_the_settings_allow() -> None:
    loopback = ipaddress.ip_address("127.0.0.1")
    private = ipaddress.ip_address("10.20.30.40")
    metadata = ipaddress.ip_address("169.254.169.254")
    public = ipaddress.ip_address("93.184.216.34")
    assert STRICT.refusal("erp.example.com", public) is None
    reason = STRICT.refusal("erp.example.com", private)
    assert reason is not None
    assert "resolves to 10.20.30.40, a private address" in reason
    assert "127.0.0.1 is a loopback address" in (STRICT.refusal("127.0.0.1", loopback) or "")

    on_prem = WebhookUrlPolicy(allow_private_networks=True)
    assert on_prem.refusal("erp.corp", private) is None
    assert on_prem.refusal("erp.corp", loopback) is not None
    assert on_prem.refusal("erp.corp", metadata) is not None

    listed = WebhookUrlPolicy.from_settings(
        ["ERP.corp.", "127.0.0.1", "10.20.0.0/16", " "],
        allow_http=False,
        allow_private_networks=False,
    )
    assert listed.allowed_hosts == frozenset({"erp.corp"})
    assert listed.refusal("erp.corp", metadata) is None  # named outright: whatever it resolves to
    assert listed.refusal("127.0.0.1", loopback) is None
    assert listed.refusal("other.corp", private) is None  # inside an allowed network
    assert listed.refusal("other.corp", ipaddress.ip_address("10.21.0.1")) is not None


def test_settings_read_a_comma_separated_or_json_host_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", "erp.corp, 10.0.0.0/8")
    assert NotifierSettings().webhook_allowed_hosts == ["erp.corp", "10.0.0.0/8"]
    monkeypatch.setenv("WEBHOOK_ALLOWED_HOSTS", '["erp.corp"]')
    assert NotifierSettings().webhook_allowed_hosts == ["erp.corp"]
    monkeypatch.delenv("WEBHOOK_ALLOWED_HOSTS")
    assert NotifierSettings().webhook_allowed_hosts == []


class FakeDns:
    """Answers with the next list of addresses per lookup (DNS rebinding in a test)."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = [[ipaddress.ip_address(a) for a in answer] for answer in answers]
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.lookups.append((host, port))
        return self.answers.pop(0)


async def test_a_request_is_pinned_to_the_address_checked_and_rebinding_is_refused() -> None:
    dns = FakeDns(["93.184.216.34"], ["127.0.0.1"], ["93.184.216.34", "10.0.0.1"])
    guard = WebhookGuard(STRICT, dns)
    pinned = await guard.pin("https://user:pw@erp.example.com/hooks/in?x=1")
    assert pinned.url == "https://user:pw@93.184.216.34:443/hooks/in?x=1"
    assert pinned.host_header == "erp.example.com"
    assert pinned.sni_hostname == "erp.example.com"
    with pytest.raises(UrlRefusedError, match=re.escape("127.0.0.1, a loopback")):
        await guard.pin("https://erp.example.com/hooks/in")
    with pytest.raises(UrlRefusedError, match=re.escape("10.0.0.1, a private address")):
        await guard.pin("https://erp.example.com:8443/hooks/in")
    assert dns.lookups == [("erp.example.com", 443)] * 2 + [("erp.example.com", 8443)]


async def test_ip_literals_need_no_lookup() -> None:
    guard = WebhookGuard(WebhookUrlPolicy(allow_http=True), FakeDns())
    pinned = await guard.pin("http://[2606:2800:220:1:248:1893:25c8:1946]:8080/h")
    assert pinned.url == "http://[2606:2800:220:1:248:1893:25c8:1946]:8080/h"
    assert pinned.sni_hostname is None
    with pytest.raises(UrlRefusedError, match="loopback"):
        await guard.pin("http://[::1]/h")


@pytest.mark.parametrize("host", ["a" * 64 + ".example.com", "a..example.com"])
async def test_a_host_name_idna_cannot_encode_is_unresolvable_not_an_error(host: str) -> None:
    """A label over 63 characters or an empty one: found by the API fuzz test as a 500."""
    with pytest.raises(UnresolvableHostError):
        await resolve(host, 443)
