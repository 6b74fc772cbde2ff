"""Outbound safety (SSRF): which URLs a function may call on a user's behalf.

Any capability that calls a URL someone registered (platform_sync's platform services,
product_monitor's and snacks' webhooks) checks it twice:

* ``check_url(url)`` when the URL is accepted (an API returns 422 ``invalid-input`` through
  ``OutboundRefused``): ``https`` only, no credentials in the URL, a host name or an IP
  literal that is a *global unicast* address. IP literals are recognised in every notation
  a resolver accepts — dotted quad, ``127.1``, decimal ``2130706433``, octal ``0177.0.0.1``,
  hex ``0x7f.0.0.1``, ``0``, IPv6 with IPv4-mapped/compatible/NAT64/6to4 forms, zone ids —
  and a trailing dot is ignored. Names that are local by definition (``localhost``,
  ``*.localhost``, ``*.internal``, ``*.local``, …) are refused without resolving. A name that
  resolves now to a refused address is refused too; one that does not resolve is accepted
  (the check below decides when it is called).
* ``GuardedTransport`` at connect time: the host is resolved, *every* address is checked,
  and the connection goes to the checked address (DNS rebinding cannot swap it in between)
  while TLS still verifies the certificate against the host name (SNI) and ``Host`` stays the
  name. Redirects are never followed by clients built here; a redirect target would go
  through the same check anyway.

Refused: loopback, private (RFC 1918, ULA), link-local (169.254/16 — the cloud metadata
service — and fe80::/10), shared (100.64/10), multicast, unspecified, reserved,
documentation and benchmarking ranges: everything ``ipaddress`` does not call global.

Local mode (``OUTBOUND_ALLOW_LOCAL=true``, which only the local cloud sets, for the
simulators it serves on 127.0.0.1) additionally allows ``http`` and *loopback* addresses;
private, link-local and metadata addresses stay refused. It is never on by default.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Callable
from typing import Any

import httpx

from .errors import InvalidInput

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

LOCAL_MODE_ENV = "OUTBOUND_ALLOW_LOCAL"
_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".intranet", ".lan")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4ISH = frozenset("0123456789abcdefxABCDEFX.")
MAX_URL_LENGTH = 2048


class OutboundRefused(InvalidInput):
    """A URL or address that must not be called (422 where it comes from a request)."""

    slug, title = "outbound-refused", "Outbound address refused"


def local_mode() -> bool:
    return os.environ.get(LOCAL_MODE_ENV, "").strip().lower() in ("1", "true", "yes")


# ------------------------------------------------------------------ addresses


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address if it is an IP literal in any notation a resolver accepts."""
    text = host.strip().rstrip(".")
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        try:
            return ipaddress.IPv6Address(text.split("%", 1)[0])
        except ValueError:
            return None
    if not text or not set(text) <= _IPV4ISH or not any(c.isdigit() for c in text):
        return None
    try:  # inet_aton is the resolver's own parser: 127.1, 0x7f.1, 0177.0.0.1, 2130706433, 0
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def _embedded_v4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if int(ip) >> 32 == 0 and int(ip) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(ip))
    return None


def address_problem(ip: IPAddress, *, allow_loopback: bool = False) -> str | None:
    """Why ``ip`` must not be called, or None when it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
        inner = _embedded_v4(ip)
        if inner is not None:
            problem = address_problem(inner, allow_loopback=allow_loopback)
            return f"{problem} (embedded in {ip})" if problem else None
    if ip.is_loopback:
        return None if allow_loopback else f"{ip} is a loopback address"
    if ip.is_unspecified:
        return f"{ip} is the unspecified address"
    if ip.is_multicast:
        return f"{ip} is a multicast address"
    if ip.is_link_local:
        return f"{ip} is a link-local address (cloud metadata lives there)"
    if ip.is_private:
        return f"{ip} is a private address"
    if not ip.is_global:
        return f"{ip} is not a public address"
    return None


def _system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def resolve_checked(
    host: str, port: int, *, allow_loopback: bool = False, resolver: Resolver = _system_resolver
) -> IPAddress:
    """Resolve ``host`` and check every address; the first one, or ``OutboundRefused``."""
    literal = parse_ip(host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in resolver(host, port)]
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from None
        if not addresses:
            raise httpx.ConnectError(f"cannot resolve {host}")
    for ip in addresses:
        problem = address_problem(ip, allow_loopback=allow_loopback)
        if problem:
            raise OutboundRefused(f"{host} resolves to a refused address: {problem}")
    return addresses[0]


# ------------------------------------------------------------------------ URLs


def check_url(
    url: str,
    *,
    local: bool | None = None,
    resolve: bool = True,
    resolver: Resolver = _system_resolver,
) -> httpx.URL:
    """``url`` parsed, or ``OutboundRefused`` naming why it may not be called."""
    local = local_mode() if local is None else local
    if not isinstance(url, str) or len(url) > MAX_URL_LENGTH:
        raise OutboundRefused("URL is missing or too long")
    if any(ch.isspace() or ord(ch) < 32 for ch in url) or "\\" in url:
        raise OutboundRefused("URL contains whitespace, control characters or backslashes")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError):
        raise OutboundRefused("URL is not valid") from None
    allowed = ("https", "http") if local else ("https",)
    if parsed.scheme not in allowed:
        raise OutboundRefused(
            "URL must use https" + (" (or http in local mode)" if not local else " or http")
        )
    if parsed.userinfo:
        raise OutboundRefused("URL must not carry credentials")
    host = parsed.host
    if not host:
        raise OutboundRefused("URL has no host")
    name = host.rstrip(".").lower()
    ip = parse_ip(name)
    if ip is not None:
        problem = address_problem(ip, allow_loopback=local)
        if problem:
            raise OutboundRefused(f"URL host refused: {problem}")
        return parsed
    if not local and (name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES) or "." not in name):
        raise OutboundRefused(f"URL host {host!r} is a local name")
    if resolve:
        # not resolvable now: the transport checks when it is called
        with contextlib.suppress(httpx.ConnectError):
            resolve_checked(name, parsed.port or 443, allow_loopback=local, resolver=resolver)
    return parsed


# ------------------------------------------------------------------- transport


class GuardedTransport(httpx.BaseTransport):
    """Checks every request's URL and resolved address, then connects to that address.

    The request is re-targeted to the checked IP; ``Host`` keeps the name (set by the
    client) and TLS verifies the certificate for the name (``sni_hostname``).
    """

    def __init__(
        self,
        inner: httpx.BaseTransport | None = None,
        *,
        local: bool | None = None,
        resolver: Resolver = _system_resolver,
    ) -> None:
        self.inner = inner if inner is not None else httpx.HTTPTransport()
        self.local = local
        self.resolver = resolver

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        local = local_mode() if self.local is None else self.local
        url = check_url(str(request.url), local=local, resolve=False)
        host = url.host
        port = url.port or (443 if url.scheme == "https" else 80)
        ip = resolve_checked(host, port, allow_loopback=local, resolver=self.resolver)
        if parse_ip(host) is None:
            request.url = request.url.copy_with(host=str(ip))
            if url.scheme == "https":
                request.extensions = {**request.extensions, "sni_hostname": host.rstrip(".")}
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def guarded_client(
    *, timeout: httpx.Timeout, headers: dict[str, str] | None = None, **kw: Any
) -> httpx.Client:
    """An ``httpx.Client`` that calls only checked addresses and never follows redirects."""
    from .http import make_client

    inner = kw.pop("transport", None)
    return make_client(
        timeout=timeout,
        retry=None,
        headers=headers,
        transport=GuardedTransport(
            inner, local=kw.pop("local", None), resolver=kw.pop("resolver", _system_resolver)
        ),
    )
