"""The outbound URL guard on its own: address classes, allow-list, URL syntax and scheme.

No sockets here: these are pure checks (public addresses are judged, never connected to).
"""

from __future__ import annotations

import ipaddress
import random
import re
import socket
import sys
from collections.abc import Callable

import httpx
import pytest

from maxgate.errors import ConfigError, OutboundBlocked, OutboundError
from maxgate.net.urlguard import (
    ALLOW_HINT,
    AddressBlocked,
    UrlGuard,
    ip_literal,
    parse_allow_list,
    refusal,
)

BLOCKED = [
    # IPv4
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.5.4", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.1.1", "link-local"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("0.1.2.3", "unspecified"),
    ("255.255.255.255", "broadcast"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("100.64.0.1", "shared address space"),
    ("100.127.255.254", "shared address space"),
    # cloud metadata
    ("169.254.169.254", "cloud metadata"),
    ("169.254.170.2", "cloud metadata"),
    ("100.100.100.200", "cloud metadata"),
    ("168.63.129.16", "cloud metadata"),
    ("fd00:ec2::254", "cloud metadata"),
    # IPv6
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("fc00::1", "private"),
    ("fd12:3456:789a::1", "private"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "link-local"),
    ("ff02::1", "multicast"),
    ("ff05::2", "multicast"),
    ("2001:db8::1", "reserved"),
    ("100::1", "reserved"),
    ("::8.8.8.8", "reserved"),  # deprecated IPv4-compatible form
    # IPv4 wrapped in IPv6: the embedded address decides
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:7f00:1", "loopback"),
    ("::ffff:10.1.2.3", "private"),
    ("::ffff:169.254.169.254", "cloud metadata"),
    ("64:ff9b::127.0.0.1", "loopback"),  # NAT64
    ("64:ff9b::a9fe:a9fe", "cloud metadata"),  # NAT64 of 169.254.169.254
    ("64:ff9b:1::1", "private"),  # local-use NAT64
    ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
    ("2002:c0a8:101::1", "private"),  # 6to4 of 192.168.1.1
    ("2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"),  # Teredo, client 127.0.0.1
]

PUBLIC = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "100.63.255.255",  # just below CGNAT
    "100.128.0.0",  # just above CGNAT
    "172.32.0.1",  # just above 172.16/12
    "2606:4700::1",
    "2a00:1450:4001:80b::200e",
    "::ffff:93.184.216.34",
    "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34
    "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_blocked_classes(address: str, reason: str) -> None:
    guard = UrlGuard()
    assert guard.blocked_reason(address) == reason
    with pytest.raises(OutboundBlocked, match=rf"^address .* is not allowed \({reason}\)$"):
        guard.check_address(address)
    with pytest.raises(OutboundBlocked):
        guard.check_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    guard = UrlGuard()
    assert guard.blocked_reason(address) is None
    guard.check_address(address)
    guard.check_address(ipaddress.ip_address(address))


def test_message_names_the_address() -> None:
    with pytest.raises(OutboundBlocked) as info:
        UrlGuard().check_address("10.0.0.1")
    assert str(info.value) == "address 10.0.0.1 is not allowed (private)"


def test_not_an_address_is_refused() -> None:
    with pytest.raises(OutboundBlocked, match="not an IP address"):
        UrlGuard().check_address("example.com")


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        ("127.0.0.0/8", "127.0.0.1"),
        ("127.0.0.0/8", "127.9.9.9"),
        ("127.0.0.0/8", "::ffff:127.0.0.1"),  # the mapped form of an allowed address
        ("10.0.0.0/8, 192.168.0.0/16", "192.168.7.7"),
        ("::1", "::1"),
        ("fd00::/8", "fd12::1"),
        ("169.254.169.254/32", "169.254.169.254"),  # metadata, named exactly
        ("fd00:ec2::254/128", "fd00:ec2::254"),
    ],
)
def test_allow_list_opens_addresses(allow: str, address: str) -> None:
    guard = UrlGuard(parse_allow_list(allow))
    assert guard.blocked_reason(address) is None
    guard.check_address(address)


@pytest.mark.parametrize(
    ("allow", "address"),
    [
        ("127.0.0.1/32", "127.0.0.2"),
        ("127.0.0.0/8", "::1"),  # an IPv4 entry does not open IPv6 loopback
        ("::1/128", "127.0.0.1"),
        ("10.0.0.0/8", "192.168.1.1"),
        # metadata stays closed to broad entries
        ("169.254.0.0/16", "169.254.169.254"),
        ("0.0.0.0/0", "169.254.169.254"),
        ("100.64.0.0/10", "100.100.100.200"),
        ("fd00::/8", "fd00:ec2::254"),
        ("::/0", "::ffff:169.254.169.254"),
    ],
)
def test_allow_list_is_exact(allow: str, address: str) -> None:
    guard = UrlGuard(parse_allow_list(allow))
    with pytest.raises(OutboundBlocked):
        guard.check_address(address)


def test_allow_everything_but_metadata() -> None:
    guard = UrlGuard(parse_allow_list("0.0.0.0/0, ::/0"))
    guard.check_address("127.0.0.1")
    guard.check_address("10.0.0.1")
    guard.check_address("fe80::1")
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        guard.check_address("169.254.169.254")


def test_parse_allow_list() -> None:
    assert parse_allow_list("") == ()
    assert parse_allow_list(" , ,") == ()
    assert parse_allow_list("10.0.0.0/8, fd00::/8 ,127.0.0.1") == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("fd00::/8"),
        ipaddress.ip_network("127.0.0.1/32"),
    )


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not-a-cidr", "10.0.0.1/8", "fd00::/129"])
def test_parse_allow_list_names_the_bad_entry(bad: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(repr(bad))):
        parse_allow_list(f"127.0.0.0/8, {bad}")


def test_check_resolved_needs_every_address_to_pass() -> None:
    guard = UrlGuard(parse_allow_list("127.0.0.1/32"))
    guard.check_resolved("ok.test", [ipaddress.ip_address("127.0.0.1")])
    mixed = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    with pytest.raises(OutboundBlocked) as info:
        guard.check_resolved("mixed.test", mixed)
    # names the host and the reason, not the internal address
    assert str(info.value) == "host mixed.test resolves to a blocked address (loopback)"


def test_check_url_returns_parsed_url() -> None:
    url = UrlGuard().check_url("https://example.com/a/b.png?x=1")
    assert isinstance(url, httpx.URL)
    assert url.host == "example.com"
    assert url.path == "/a/b.png"


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://example.com:70/_stats",
        "ws://example.com/",
        "dict://example.com:11211/stat",
    ],
)
def test_check_url_refuses_other_schemes(url: str) -> None:
    with pytest.raises(OutboundBlocked, match="only http and https"):
        UrlGuard().check_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("", "must be absolute"),
        ("/relative/path", "must be absolute"),
        ("http:///no-host", "has no host"),
        ("http://exa\x00mple.com/", "malformed"),
        ("http://example.com:99999/", "port 99999 is out of range"),
        ("http://example.com:0/", "port 0 is out of range"),
        ("http://example.com:abc/", "malformed"),
    ],
)
def test_check_url_malformed(url: str, message: str) -> None:
    with pytest.raises(OutboundError, match=message) as info:
        UrlGuard().check_url(url)
    assert not isinstance(info.value, OutboundBlocked)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://10.0.0.1:8080/x",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
    ],
)
def test_check_url_refuses_literal_addresses(url: str) -> None:
    with pytest.raises(OutboundBlocked, match="is not allowed"):
        UrlGuard().check_url(url)


# Hosts the system resolver takes for an IPv4 address without asking DNS (inet_aton's forms),
# and the address each stands for.
SHORTHAND = [
    ("127.1", "127.0.0.1"),  # two parts: the last fills three bytes
    ("127.0.1", "127.0.0.1"),  # three parts: the last fills two bytes
    ("2130706433", "127.0.0.1"),  # one decimal number
    ("0x7f000001", "127.0.0.1"),  # hexadecimal
    ("0x7f.1", "127.0.0.1"),
    ("017700000001", "127.0.0.1"),  # octal
    ("0177.0.0.01", "127.0.0.1"),
    ("127.000.000.001", "127.0.0.1"),  # leading zeros: octal, here still 127.0.0.1
    ("127.0.0.1.", "127.0.0.1"),  # a trailing dot
    ("127.1.", "127.0.0.1"),
    ("0", "0.0.0.0"),
    ("0x", "0.0.0.0"),  # no hex digits: 0, as browsers read it (inet_aton refuses it)
    ("0.0.0.0.", "0.0.0.0"),
    ("167772161", "10.0.0.1"),
    ("0xa9fea9fe", "169.254.169.254"),
    ("1", "0.0.0.1"),
    ("4294967295", "255.255.255.255"),
    ("1.16777215", "1.255.255.255"),
    ("1572395042", "93.184.216.34"),  # a public address, written as a number
]

NOT_LITERALS = [
    "example.com",
    "example.com.",
    "localhost",
    "08",  # not octal: a name (DNS will not find it)
    "4294967296",  # out of range
    "256.1",
    "1.16777216",
    "1.2.3.4.5",  # five parts
    "127.0.0.1..",
    "0x1g",
    "1e3",
    "",
    ".",
]


@pytest.mark.parametrize(("host", "address"), SHORTHAND)
def test_ip_literal_reads_inet_aton_forms(host: str, address: str) -> None:
    assert ip_literal(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize("host", NOT_LITERALS)
def test_ip_literal_leaves_names_alone(host: str) -> None:
    assert ip_literal(host) is None


def test_ip_literal_reads_the_usual_forms() -> None:
    assert ip_literal("93.184.216.34") == ipaddress.ip_address("93.184.216.34")
    assert ip_literal("::ffff:127.0.0.1") == ipaddress.ip_address("::ffff:7f00:1")


@pytest.mark.skipif(sys.platform != "linux", reason="compares with glibc's inet_aton")
def test_ip_literal_knows_every_address_inet_aton_reads() -> None:
    """Every host the C library reads as an IPv4 address is one for the guard too, and the
    same one (the guard may recognise more, never less: what it misses goes to DNS)."""
    rng = random.Random(10)
    accepted = 0
    for _ in range(50_000):
        host = "".join(rng.choice("0123456789xXaAfF.g") for _ in range(rng.randint(1, 14)))
        try:
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            continue
        accepted += 1
        assert ip_literal(host) == address, host
    assert accepted > 1000


@pytest.mark.parametrize(
    ("host", "address", "reason"),
    [
        ("127.1", "127.0.0.1", "loopback"),
        ("2130706433", "127.0.0.1", "loopback"),
        ("0x7f000001", "127.0.0.1", "loopback"),
        ("0x7f.1", "127.0.0.1", "loopback"),
        ("017700000001", "127.0.0.1", "loopback"),
        ("127.0.0.1.", "127.0.0.1", "loopback"),
        ("0", "0.0.0.0", "unspecified"),
        ("0x", "0.0.0.0", "unspecified"),
        ("167772161", "10.0.0.1", "private"),
        ("0xa9fea9fe", "169.254.169.254", "cloud metadata"),
    ],
)
def test_check_url_refuses_shorthand_literals(host: str, address: str, reason: str) -> None:
    with pytest.raises(AddressBlocked) as info:
        UrlGuard().check_url(f"http://{host}/hook")
    assert str(info.value) == f"address {host} ({address}) is not allowed ({reason})"


def test_check_url_refuses_dotted_quads_with_leading_zeros_as_malformed() -> None:
    # httpx itself refuses them (it reads four dotted parts strictly): never reach a resolver.
    with pytest.raises(OutboundError, match="malformed"):
        UrlGuard().check_url("http://127.000.000.001/")


def test_check_url_passes_public_literals_and_names() -> None:
    for url in (
        "http://93.184.216.34/",
        "http://1572395042/",  # 93.184.216.34 as a number
        "http://93.184.216.34./",
        "https://example.com/hook",
        "https://example.com./hook",
        "http://08/",  # a name, judged when it is resolved
    ):
        assert UrlGuard().check_url(url).host


def test_allow_list_opens_shorthand_literals() -> None:
    guard = UrlGuard(parse_allow_list("127.0.0.0/8"))
    guard.check_url("http://127.1/")
    guard.check_url("http://2130706433/")
    with pytest.raises(AddressBlocked, match="unspecified"):
        guard.check_url("http://0/")


def test_check_url_leaves_names_to_connect_time() -> None:
    # Names are resolved and checked for every connection, not here.
    UrlGuard().check_url("http://localhost:8080/")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://alice:s3cret@example.com/file",
        "http://alice:s3cret@10.0.0.1/",
        "alice:s3cret@example.com/file",
        "gopher://alice:s3cret@127.0.0.1/",
    ],
)
def test_credentials_never_echoed(url: str) -> None:
    with pytest.raises(OutboundError) as info:
        UrlGuard().check_url(url)
    assert "s3cret" not in str(info.value)
    assert "alice" not in str(info.value)


def test_repr_lists_allowed_networks() -> None:
    guard = UrlGuard(parse_allow_list("127.0.0.0/8"))
    assert repr(guard) == "UrlGuard(allow=['127.0.0.0/8'])"
    assert guard.allow == (ipaddress.ip_network("127.0.0.0/8"),)


# --- how a refusal is worded for users ---------------------------------------------------------


def _raised(check: Callable[[], object]) -> OutboundError:
    with pytest.raises(OutboundError) as info:
        check()
    return info.value


def test_address_refusals_name_the_setting_after_their_own_words() -> None:
    guard = UrlGuard()
    literal = _raised(lambda: guard.check_url("http://127.0.0.1:1/x"))
    assert isinstance(literal, AddressBlocked) and literal.reason == "loopback"
    assert str(literal) == "address 127.0.0.1 is not allowed (loopback)"  # the error is as before
    assert refusal(literal) == (
        "address 127.0.0.1 is not allowed (loopback); "
        "allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)"
    )
    resolved = _raised(
        lambda: guard.check_resolved("intranet.test", [ipaddress.ip_address("10.0.0.7")])
    )
    assert isinstance(resolved, AddressBlocked)
    assert refusal(resolved) == (
        f"host intranet.test resolves to a blocked address (private); {ALLOW_HINT}"
    )


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: UrlGuard().check_url("ftp://example.com/x"), "scheme ftp is not allowed"),
        (lambda: UrlGuard().check_url("http:///x"), "the URL has no host"),
        (lambda: UrlGuard().check_address("example.com"), "is not an IP address"),
        # only an entry naming the single address opens it: no hint to open it
        (lambda: UrlGuard().check_url("http://169.254.169.254/"), "(cloud metadata)"),
    ],
)
def test_other_refusals_get_no_hint(check: Callable[[], object], message: str) -> None:
    error = _raised(check)
    assert message in str(error)
    assert refusal(error) == str(error)
    assert "outbound_allow" not in refusal(error)
    assert not isinstance(error, AddressBlocked) or not error.allow_listable
