"""Which address a request really comes from, trusting forwarding headers only from our proxies."""

from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from typing import Literal

Network = IPv4Network | IPv6Network
IPAddress = IPv4Address | IPv6Address


def _parse(candidate: str) -> IPAddress | None:
    text = candidate.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ip_address(text)
    except ValueError:
        return None


def _forwarded_for(header: str) -> list[str]:
    hops: list[str] = []
    for element in header.split(","):
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for":
                hops.append(value)
    return hops


def _trusted(address: IPAddress, proxies: Sequence[Network]) -> bool:
    return any(address in network for network in proxies)


def resolve_client_ip(
    peer: str | None,
    *,
    forwarded_header: Literal["x-forwarded-for", "forwarded"],
    header_value: str | None,
    trusted_proxies: Sequence[Network],
) -> str | None:
    """The client address: the socket peer, or the nearest untrusted hop when the peer is a proxy.

    Only the one header the proxies write is read (a client could send the other one through
    them untouched), with every line of it joined. Hops are read from the right (closest to
    us); each trusted proxy passes the request on to the hop before it. Anything a client
    writes into the header itself lies further left and is never reached while an untrusted
    hop stands in the way.
    """
    if peer is None or not trusted_proxies:
        return peer
    peer_address = _parse(peer)
    if peer_address is None or not _trusted(peer_address, trusted_proxies):
        return peer
    if not header_value:
        return peer
    hops = (
        _forwarded_for(header_value) if forwarded_header == "forwarded" else header_value.split(",")
    )
    client = peer_address
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            break
        client = address
        if not _trusted(address, trusted_proxies):
            break
    return str(client)
