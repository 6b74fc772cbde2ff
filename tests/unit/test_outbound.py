"""``opsdeck.outbound``: every notation of a refused address is refused, at check and connect time."""

from __future__ import annotations

import httpx
import pytest

from opsdeck.outbound import GuardedTransport, OutboundRefused, check_url, parse_ip

REFUSED_HOSTS = [
    "127.0.0.1",
    "127.1",
    "0x7f.1",
    "0177.0.0.1",
    "2130706433",
    "017700000001",
    "127.0.0.1.",
    "0",
    "0.0.0.0",
    "[::]",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "169.254.169.254",
    "2852039166",
    "0xa9fea9fe",
    "0251.0376.0251.0376",
    "[::ffff:169.254.169.254]",
    "[64:ff9b::a9fe:a9fe]",
    "[2002:a9fe:a9fe::]",
    "[fe80::1%25eth0]",
    "[fd00:ec2::254]",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.0.1",
    "100.64.0.1",
    "100.100.100.200",
    "224.0.0.1",
    "[ff02::1]",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",
    "198.18.0.1",
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "metadata.google.internal",
    "printer.local",
    "intranet",
]


@pytest.mark.parametrize("host", REFUSED_HOSTS)
def test_refused_hosts(host):
    with pytest.raises(OutboundRefused):
        check_url(f"https://{host}/sync", local=False, resolve=False)


@pytest.mark.parametrize("host", ["8.8.8.8", "[2606:4700:4700::1111]", "sync.example.com", "134744072"])
def test_public_hosts_pass(host):
    assert check_url(f"https://{host}/sync", local=False, resolve=False).host


@pytest.mark.parametrize(
    "url",
    [
        "http://sync.example.com/",
        "ftp://sync.example.com/",
        "https://u:p@sync.example.com/",
        "https:///x",
        "https://exa mple.com/",
        "https://example.com\\@evil.com/",
        "javascript:alert(1)",
        "x" * 3000,
    ],
)
def test_bad_urls(url):
    with pytest.raises(OutboundRefused):
        check_url(url, local=False, resolve=False)


def test_local_mode_allows_http_and_loopback_only():
    assert check_url("http://127.0.0.1:8080/p/a", local=True).port == 8080
    assert check_url("http://[::1]:8080/", local=True)
    for url in ("http://169.254.169.254/", "http://10.0.0.1/", "http://[::ffff:a9fe:a9fe]/", "http://0/"):
        with pytest.raises(OutboundRefused):
            check_url(url, local=True)


def test_names_resolving_to_refused_addresses_are_refused_at_check_time():
    with pytest.raises(OutboundRefused, match="private"):
        check_url("https://sync.example.com/", local=False, resolver=lambda h, p: ["10.1.1.1"])

    # unresolvable now: accepted, the transport decides at call time
    def unresolvable(host, port):
        raise OSError("no DNS")

    assert check_url("https://sync.example.com/", local=False, resolver=unresolvable)


def test_parse_ip_notations():
    assert str(parse_ip("0x7f.1")) == "127.0.0.1"
    assert str(parse_ip("2130706433")) == "127.0.0.1"
    assert str(parse_ip("0")) == "0.0.0.0"
    assert parse_ip("example.com") is None and parse_ip("deadbeef.com") is None


class Recorder(httpx.BaseTransport):
    def __init__(self):
        self.requests = []

    def handle_request(self, request):
        self.requests.append(request)
        return httpx.Response(200, json={"ok": True})


def test_transport_connects_to_the_checked_address_keeping_host_and_sni():
    inner = Recorder()
    transport = GuardedTransport(inner, local=False, resolver=lambda h, p: ["93.184.216.34"])
    with httpx.Client(transport=transport) as client:
        assert client.post("https://sync.example.com/api/sync").status_code == 200
    [sent] = inner.requests
    assert sent.url.host == "93.184.216.34"
    assert sent.headers["host"] == "sync.example.com"
    assert sent.extensions["sni_hostname"] == "sync.example.com"


@pytest.mark.parametrize(
    "answers", [["127.0.0.1"], ["93.184.216.34", "169.254.169.254"], ["::ffff:10.0.0.1"]]
)
def test_transport_refuses_when_any_resolved_address_is_refused(answers):
    inner = Recorder()
    transport = GuardedTransport(inner, local=False, resolver=lambda h, p: answers)
    with httpx.Client(transport=transport) as client, pytest.raises(OutboundRefused):
        client.get("https://rebinding.example.com/")
    assert inner.requests == []


def test_transport_checks_every_redirect_hop_too():
    inner = Recorder()
    transport = GuardedTransport(inner, local=False, resolver=lambda h, p: ["93.184.216.34"])
    with httpx.Client(transport=transport) as client, pytest.raises(OutboundRefused):
        client.get("https://[::ffff:169.254.169.254]/latest")
    assert inner.requests == []


def test_transport_connects_to_a_checked_ipv6_address():
    inner = Recorder()
    transport = GuardedTransport(inner, local=False, resolver=lambda h, p: ["2606:4700:4700::1111"])
    with httpx.Client(transport=transport) as client:
        client.get("https://sync.example.com:8443/v")
    [sent] = inner.requests
    assert str(sent.url) == "https://[2606:4700:4700::1111]:8443/v"
    assert sent.headers["host"] == "sync.example.com:8443"
