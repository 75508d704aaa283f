"""The outbound URL guard: which addresses maxgate may fetch from on a user's behalf.

``sendFileByUrl`` and webhooks make maxgate open connections to addresses chosen by API users.
Without a guard that is a server-side request forgery hole: a user could make the gateway read
its own admin port, a database on the private network or the cloud metadata service and hand
back the answer as a "file". The guard refuses every address that is not plainly public:

* loopback, private (RFC 1918, ULA ``fc00::/7``), link-local (``169.254/16``, ``fe80::/10``),
  multicast, unspecified (``0.0.0.0``, ``::``), reserved, documentation and benchmarking
  ranges, broadcast, shared CGNAT space (``100.64/10``), any IPv6 address outside global
  unicast ``2000::/3``;
* IPv4 addresses wrapped in IPv6 (IPv4-mapped ``::ffff:0:0/96``, NAT64 ``64:ff9b::/96``, 6to4
  ``2002::/16``, Teredo ``2001::/32``): the embedded IPv4 address is checked as well;
* cloud metadata endpoints (AWS, GCP, Azure, Alibaba, Oracle, Tencent).

An IP literal is any host the system resolver would take for one without asking DNS
(``ip_literal``): besides the usual forms, the shorthand IPv4 forms of ``inet_aton`` —
``127.1``, ``2130706433``, ``0x7f000001``, ``017700000001`` — and a dotted quad with a trailing
dot (``127.0.0.1.``), so that none of them slips past the up-front check as a "name".

The operator may allow-list networks with CIDRs (``MAXGATE_OUTBOUND_ALLOW``). Metadata
addresses are stricter on purpose: a broad entry such as ``0.0.0.0/0`` or ``169.254.0.0/16``
does not open them, only an entry naming the single address (``169.254.169.254/32``) does.
A refused address raises ``AddressBlocked``; ``refusal`` words it for the API's answers,
naming the setting when an allow-list entry would lift the refusal.

The tables are written out here instead of relying on ``ipaddress``'s ``is_private`` /
``is_global`` because those changed between Python patch releases (and call multicast
"global"); a security boundary should not move with the interpreter.

The guard itself is pure: it judges URLs and addresses. Enforcement at connect time (so that
DNS rebinding cannot slip a different address past the check) lives in ``maxgate.net.connection``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from maxgate.errors import ConfigError, OutboundBlocked, OutboundError

__all__ = [
    "ALLOWED_SCHEMES",
    "ALLOW_HINT",
    "AddressBlocked",
    "IPAddress",
    "IPNetwork",
    "UrlGuard",
    "ip_literal",
    "parse_allow_list",
    "refusal",
]

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

ALLOWED_SCHEMES = frozenset({"http", "https"})

_METADATA = "cloud metadata"

# Checked before everything else, so that messages say "cloud metadata" and a broad allow-list
# entry does not open them.
_METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure IMDS, DigitalOcean, OpenStack, Oracle
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.170.23",  # AWS EKS pod identity agent
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure WireServer (a public address!)
        "192.0.0.192",  # Oracle Cloud (legacy)
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",  # AWS EKS pod identity agent over IPv6
    )
)


ALLOW_HINT = "allow it with the setting outbound_allow (MAXGATE_OUTBOUND_ALLOW)"
"""What a refusal the operator's allow-list can lift adds to its message (see ``refusal``)."""


class AddressBlocked(OutboundBlocked):
    """The guard refused an address (a literal one, or what a host name resolved to) because
    of its class, ``reason`` (``"loopback"``, ``"private"``, ``"cloud metadata"`` …).

    Unlike a refused scheme, an allow-list entry can open such an address: ``allow_listable``
    says whether a message should tell the user so. It is false for cloud metadata, which only
    an entry naming the single address opens, and which is almost never meant to be reachable.
    """

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason

    @property
    def allow_listable(self) -> bool:
        """Whether pointing the user at ``outbound_allow`` would help."""
        return self.reason != _METADATA


def refusal(exc: OutboundError) -> str:
    """The sentence for a user about a refused or failed outbound target: ``exc``'s message,
    followed by ``ALLOW_HINT`` when the operator's allow-list could lift the refusal, e.g.
    ``address 127.0.0.1 is not allowed (loopback); allow it with the setting outbound_allow
    (MAXGATE_OUTBOUND_ALLOW)``. The message comes first, unchanged, for clients that match on
    its start."""
    if isinstance(exc, AddressBlocked) and exc.allow_listable:
        return f"{exc}; {ALLOW_HINT}"
    return str(exc)


def _table(*rows: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(cidr), reason) for cidr, reason in rows)


# First match wins.
_BLOCKED_V4 = _table(
    ("0.0.0.0/8", "unspecified"),  # "this network"
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared address space"),  # carrier-grade NAT, RFC 6598
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
    ("192.0.2.0/24", "reserved"),  # documentation
    ("192.88.99.0/24", "reserved"),  # deprecated 6to4 relay anycast
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "reserved"),  # benchmarking
    ("198.51.100.0/24", "reserved"),  # documentation
    ("203.0.113.0/24", "reserved"),  # documentation
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)

_BLOCKED_V6 = _table(
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("64:ff9b:1::/48", "private"),  # local-use NAT64, RFC 8215
    ("fc00::/7", "private"),  # unique local
    ("fe80::/10", "link-local"),
    ("fec0::/10", "private"),  # deprecated site-local
    ("ff00::/8", "multicast"),
    ("2001:2::/48", "reserved"),  # benchmarking
    ("2001:db8::/32", "reserved"),  # documentation
    ("3fff::/20", "reserved"),  # documentation, RFC 9637
)

_GLOBAL_UNICAST_V6 = IPv6Network("2000::/3")
_MAPPED_V6 = IPv6Network("::ffff:0:0/96")
_NAT64_V6 = IPv6Network("64:ff9b::/96")


def parse_allow_list(text: str) -> tuple[IPNetwork, ...]:
    """Parse the operator's allow-list: comma-separated CIDRs, e.g. ``"10.0.0.0/8, fd00::/8"``.

    A bare address means that single host. Empty text (or only commas and blanks) gives ``()``.
    Raises ``ConfigError`` naming the first entry that is not a network, including one with host
    bits set (``10.0.0.1/8``), since that is more often a typo than an intent.
    """
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item))
        except ValueError as exc:
            raise ConfigError(
                f"outbound allow-list entry {item!r} is not a CIDR network ({exc}); "
                "expected something like 10.0.0.0/8 or fd00::/8"
            ) from exc
    return tuple(networks)


def _embedded_ipv4(address: IPv6Address) -> IPv4Address | None:
    """The IPv4 address a packet to ``address`` really ends up at, for the transition forms."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64_V6:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client, i.e. the peer; [0] is the relay server
    return None


def _own_reason(address: IPAddress) -> str | None:
    """Why ``address`` itself is blocked (not looking inside transition forms), or ``None``."""
    if isinstance(address, IPv6Address) and address.scope_id:
        address = IPv6Address(int(address))  # fe80::1%eth0: the scope id would spoil set lookups
    if address in _METADATA_ADDRESSES:
        return _METADATA
    if isinstance(address, IPv4Address):
        return next((reason for net, reason in _BLOCKED_V4 if address in net), None)
    for net, reason in _BLOCKED_V6:
        if address in net:
            return reason
    if address in _MAPPED_V6 or address in _NAT64_V6:
        return None  # judged by the embedded IPv4 address
    if address not in _GLOBAL_UNICAST_V6:
        return "reserved"
    return None


# One part of an IPv4 address as inet_aton reads it: hexadecimal, octal (a leading 0) or decimal.
_IPV4_PART = re.compile(r"0[xX][0-9a-fA-F]*|0[0-7]*|[1-9][0-9]*")


def _part_value(part: str) -> int:
    if part[:2] in ("0x", "0X"):
        return int(part[2:] or "0", 16)  # "0x" alone is 0, as browsers read it
    return int(part, 8 if part.startswith("0") else 10)


def _ipv4_shorthand(host: str) -> IPv4Address | None:
    """The address of an IPv4 literal in one of the forms ``inet_aton`` accepts (1 to 4 parts,
    each decimal, octal or hexadecimal, the last one filling the remaining bytes), with an
    optional trailing dot; ``None`` for anything else, including out-of-range parts."""
    parts = host.removesuffix(".").split(".")
    if len(parts) > 4 or not all(_IPV4_PART.fullmatch(part) for part in parts):
        return None
    *head, last = (_part_value(part) for part in parts)
    if any(value > 0xFF for value in head) or last >= 1 << (8 * (4 - len(head))):
        return None
    packed = last
    for position, value in enumerate(head):
        packed |= value << (24 - 8 * position)
    return IPv4Address(packed)


def ip_literal(host: str) -> IPAddress | None:
    """The address ``host`` (a URL's host, without brackets) denotes when it is an IP literal,
    or ``None`` when it is a name to resolve.

    Besides the forms ``ipaddress`` reads, this recognises what ``inet_aton`` (and so
    ``getaddrinfo``) takes for an IPv4 address without asking DNS — ``127.1``, ``2130706433``,
    ``0x7f000001``, ``017700000001``, ``0`` — and a trailing dot (``127.0.0.1.``), which some
    resolvers and every browser strip.
    """
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _ipv4_shorthand(host)


def _parse_address(address: str | IPAddress) -> IPAddress:
    if isinstance(address, IPv4Address | IPv6Address):
        return address
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError as exc:
        raise OutboundBlocked(f"{address!r} is not an IP address") from exc


class UrlGuard:
    """Decides whether maxgate may connect to a URL or address on a user's behalf.

    ``allow`` lists the networks the operator opened (see ``parse_allow_list``); everything in
    the module docstring's list is refused otherwise. Instances are immutable and cheap; share
    one per process.
    """

    __slots__ = ("_allow",)

    def __init__(self, allow: Sequence[IPNetwork] = ()) -> None:
        self._allow: tuple[IPNetwork, ...] = tuple(allow)

    def __repr__(self) -> str:
        return f"UrlGuard(allow={[str(net) for net in self._allow]!r})"

    @property
    def allow(self) -> tuple[IPNetwork, ...]:
        """The operator's allow-listed networks."""
        return self._allow

    def _allowed(self, address: IPAddress, reason: str) -> bool:
        for net in self._allow:
            if address.version != net.version:
                continue
            if reason == _METADATA and net.prefixlen != net.max_prefixlen:
                continue
            if address in net:
                return True
        return False

    def blocked_reason(self, address: str | IPAddress) -> str | None:
        """Why connecting to ``address`` is refused (``"loopback"``, ``"private"``, …), or
        ``None`` when it is allowed. Raises ``OutboundBlocked`` when it is not an IP address."""
        ip = _parse_address(address)
        reason = _own_reason(ip)
        if reason is not None and not self._allowed(ip, reason):
            return reason
        if isinstance(ip, IPv6Address):
            inner = _embedded_ipv4(ip)
            if inner is not None:
                reason = _own_reason(inner)
                if reason is not None and not self._allowed(inner, reason):
                    return reason
        return None

    def check_address(self, address: str | IPAddress) -> None:
        """Raise ``AddressBlocked`` unless maxgate may connect to ``address`` (``OutboundBlocked``
        when it is not an IP address).

        The message names the address and why, e.g. ``address 10.0.0.1 is not allowed
        (private)``; only use it for addresses the user gave literally.
        """
        reason = self.blocked_reason(address)
        if reason is not None:
            raise AddressBlocked(f"address {address} is not allowed ({reason})", reason)

    def check_resolved(self, host: str, addresses: Iterable[IPAddress]) -> None:
        """Raise ``AddressBlocked`` if any address ``host`` resolved to is refused.

        All of them must pass, not just one: a name that answers with both a public and an
        internal address is treated as hostile. The message names the host and the reason but
        not the internal address, which the user should not learn from us.
        """
        for address in addresses:
            reason = self.blocked_reason(address)
            if reason is not None:
                raise AddressBlocked(
                    f"host {host} resolves to a blocked address ({reason})", reason
                )

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """Check a URL before any network traffic and return it parsed.

        Checks syntax, the scheme (only ``http`` and ``https``) and, when the host is an IP
        literal, the address. Names are not resolved here: that happens, and is checked again,
        for every connection (see ``maxgate.net.connection``), so a name that changes its answer
        cannot get past. Raises ``OutboundError`` for a malformed URL, ``OutboundBlocked``
        for a refused scheme and ``AddressBlocked`` for a refused address. Messages never
        include the URL's user or password.
        """
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url)
        except (httpx.InvalidURL, TypeError) as exc:
            raise OutboundError("the URL is malformed") from exc
        if not parsed.scheme:
            raise OutboundError("the URL must be absolute, starting with http:// or https://")
        if parsed.scheme not in ALLOWED_SCHEMES:
            # Without "//" a "user:password@host" string parses with scheme "user": only name
            # the scheme when the URL really had an authority part.
            if parsed.host and parsed.scheme.isascii() and len(parsed.scheme) <= 16:
                raise OutboundBlocked(f"scheme {parsed.scheme} is not allowed, only http and https")
            raise OutboundBlocked("only http and https URLs are allowed")
        if not parsed.host:
            raise OutboundError("the URL has no host")
        if parsed.port is not None and not 0 < parsed.port < 65536:
            raise OutboundError(f"the URL's port {parsed.port} is out of range")
        literal = ip_literal(parsed.host)
        if literal is None:
            return parsed
        reason = self.blocked_reason(literal)
        if reason is not None:
            shown = str(literal)
            if isinstance(literal, IPv4Address) and parsed.host != shown:
                # A shorthand form: named as written and as the address it stands for.
                shown = f"{parsed.host} ({literal})"
            raise AddressBlocked(f"address {shown} is not allowed ({reason})", reason)
        return parsed
