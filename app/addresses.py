"""Which IP addresses are public: for the webhook guard (app/webhooks/ssrf.py), which must not
reach our own network, and for citations (app/sources/schemas.py), which must name a public
host. Pure: no I/O."""

import ipaddress
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Not covered by `is_global` but still routes to somebody's private network.
_ALSO_BLOCKED = [ipaddress.ip_network("100.64.0.0/10")]
# IPv6 is public only inside the global unicast block, 2000::/3. Python's `is_global` also says
# yes to IPv4-compatible (::/96, so `::127.0.0.1`), IPv4-translated (::ffff:0:0:0/96) and NAT64
# (64:ff9b::/96) addresses, which carry an IPv4 address that may be internal; outside 2000::/3
# those, and anything assigned later, are refused without a list to keep up to date.
_IPV6_UNICAST = ipaddress.IPv6Network("2000::/3")
# Inside it, blocks that carry an IPv4 address or reach no one: 6to4 (2002::/16), Teredo
# (2001::/32, not global anyway) and documentation (3fff::/20).
_IPV6_BLOCKED = [ipaddress.IPv6Network(n) for n in ("2002::/16", "2001::/32", "3fff::/20")]


def parse_subnets(subnets: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(s, strict=False) for s in subnets]


def _unmapped(ip: IPAddress) -> IPAddress:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def in_allowlist(ip: IPAddress, allowed: list[Network]) -> bool:
    ip = _unmapped(ip)
    return any(ip.version == net.version and ip in net for net in allowed)


def is_public(ip: IPAddress) -> bool:
    """A public unicast address: neither ours, nor a private network's, nor an IPv6 form of an
    IPv4 address (an IPv4-mapped one is judged as the IPv4 address it maps)."""
    ip = _unmapped(ip)
    if not ip.is_global or ip.is_multicast:
        return False
    if isinstance(ip, ipaddress.IPv4Address):
        return not any(ip in net for net in _ALSO_BLOCKED)
    return ip in _IPV6_UNICAST and not any(ip in net for net in _IPV6_BLOCKED)


def address_allowed(ip: IPAddress, allowed: list[Network]) -> bool:
    return in_allowlist(ip, allowed) or is_public(ip)
