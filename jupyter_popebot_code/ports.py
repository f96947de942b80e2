"""The TCP ports a workspace listens on, read from its /proc/net/tcp and /proc/net/tcp6.

Pure parsing: `ContainerManager.listening_ports` runs one `docker exec` and hands the text here.
"""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import dataclass

# /proc/net/tcp's `st` column: 0A is TCP_LISTEN.
_LISTEN = "0A"
# Preferred address to show for a port bound several times (wildcards reach everything).
_WILDCARDS = ("0.0.0.0", "::")  # noqa: S104


@dataclass(frozen=True)
class ListeningPort:
    """A port something listens on, and the address it is bound to inside the container."""

    port: int
    address: str

    @property
    def reachable(self) -> bool:
        """Whether the server can reach it: not bound to the container's loopback only."""
        return not ipaddress.ip_address(self.address).is_loopback


def _hex_address(text: str) -> str:
    """A /proc/net/tcp{,6} address: 32-bit words in the kernel's (host) byte order."""
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # ::ffff:127.0.0.1 is loopback like 127.0.0.1
    return str(address)


def parse_listening(
    text: str, exclude: tuple[int, ...] = (), hidden_addresses: tuple[str, ...] = ()
) -> list[ListeningPort]:
    """Listening sockets in the text of /proc/net/tcp and tcp6, one entry per port, lowest first.

    Ports in `exclude` (ttyd's) and sockets bound to `hidden_addresses` (Docker's embedded DNS
    on 127.0.0.11) are left out.
    A port bound to several addresses is reachable if any of them is; the address shown is a
    wildcard when there is one, else the first reachable one, else the loopback one.
    """
    by_port: dict[int, list[str]] = {}
    for line in text.splitlines():
        fields = line.split()
        # "sl local_address rem_address st ...": the header line has no ":" in field 0 + 1.
        if len(fields) < 4 or not fields[0].endswith(":") or fields[3] != _LISTEN:
            continue
        address_hex, _, port_hex = fields[1].partition(":")
        try:
            port = int(port_hex, 16)
            address = _hex_address(address_hex)
        except ValueError:
            continue
        if port in exclude or address in hidden_addresses:
            continue
        seen = by_port.setdefault(port, [])
        if address not in seen:
            seen.append(address)
    return [ListeningPort(port, _best(addresses)) for port, addresses in sorted(by_port.items())]


def _best(addresses: list[str]) -> str:
    for wildcard in _WILDCARDS:
        if wildcard in addresses:
            return wildcard
    reachable = [a for a in addresses if not ipaddress.ip_address(a).is_loopback]
    return (reachable or addresses)[0]
