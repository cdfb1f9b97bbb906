"""Which network peers are believed: one parser and one test for every
allow-list (the web's trusted proxies, FastAGI's Asterisk servers)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Peers:
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, entries: Iterable[str], what: str = "address") -> Peers:
        """Addresses or networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``);
        ValueError naming ``what`` for anything else."""
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                raise ValueError(f"{what} {entry!r}: an IP address or network (10.0.0.5, 10.0.0.0/24)") from None
        return cls(tuple(networks))

    def allows(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # an IPv6 scope id is not part of the address
        except ValueError:
            return False  # not an address: never one of ours
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def is_loopback_host(host: str) -> bool:
    """A listen host that only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
