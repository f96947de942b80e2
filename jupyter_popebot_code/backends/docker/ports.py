"""The TCP ports a workspace listens on, read from its /proc/net/tcp and /proc/net/tcp6.

Pure parsing: `ContainerManager.listening_ports` runs `listing_command` in one `docker exec` (on
the Docker thread pool, where this parsing runs too) and hands the text here.
"""

from __future__ import annotations

import ipaddress
import sys

from ...errors import ListingUnreadable

# The listing types belong to the backend interface; imported from here too.
from ..base import ListeningPort, PortListing

__all__ = ["ListeningPort", "ListingUnreadable", "PortListing", "listing_command", "parse_listing"]

# /proc/net/tcp's `st` column: 0A is TCP_LISTEN.
_LISTEN = "0A"
# Preferred address to show for a port bound several times (wildcards reach everything).
_WILDCARDS = ("0.0.0.0", "::")  # noqa: S104
_PROC_FILES = ("/proc/net/tcp", "/proc/net/tcp6")
# The line the command prints after each file: proof that the exec's output reached us whole.
_END = "@@popebot-end "
# The first line of /proc/net/tcp{,6}, always there, even with no socket at all.
_HEADER = "local_address"


def listing_command(max_bytes: int) -> list[str]:
    """At most `max_bytes` of each of /proc/net/tcp and tcp6 (absent without IPv6), each
    followed by an end line; exits 0 whatever is missing, so output alone tells what was read.
    """
    script = (
        f'for f in {" ".join(_PROC_FILES)}; do head -c "$1" "$f" 2>/dev/null; '
        f'echo; echo "{_END}$f"; done'
    )
    return ["sh", "-c", script, "sh", str(max_bytes)]


def _hex_address(text: str) -> str:
    """A /proc/net/tcp{,6} address: 32-bit words in the kernel's (host) byte order."""
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)  # ::ffff:127.0.0.1 is loopback like 127.0.0.1
    return str(address)


def _sections(text: str) -> dict[str, str]:
    """File name -> what `listing_command` printed of it (without the newline echo added)."""
    found: dict[str, str] = {}
    start = 0
    while True:
        at = text.find("\n" + _END, start)
        if at < 0:
            return found
        end_of_line = text.find("\n", at + 1)
        name = text[at + 1 + len(_END) : end_of_line if end_of_line >= 0 else len(text)]
        found[name.strip()] = text[start:at]
        if end_of_line < 0:
            return found
        start = end_of_line + 1


def _is_listen(line: str) -> bool:
    fields = line.split()
    return len(fields) >= 4 and fields[0].endswith(":") and fields[3] == _LISTEN


def parse_listing(
    text: str,
    *,
    max_bytes: int,
    max_ports: int,
    exclude: tuple[int, ...] = (),
    hidden_addresses: tuple[str, ...] = (),
) -> PortListing:
    """The output of `listing_command(max_bytes)` as at most `max_ports` ports, lowest first.

    Raises ListingUnreadable unless /proc/net/tcp's header and every end line came through: an
    empty answer means "output lost", never "nothing listens". The kernel lists listening
    sockets before connected ones, so a file cut at `max_bytes` lost listeners only when its
    last whole line is a listener.
    """
    sections = _sections(text)
    if set(sections) != set(_PROC_FILES) or _HEADER not in sections[_PROC_FILES[0]][:200]:
        raise ListingUnreadable("The workspace's listening sockets could not be read.")
    lines: list[str] = []
    truncated = False
    for content in sections.values():
        file_lines = content.split("\n")
        if len(content) >= max_bytes:
            file_lines = file_lines[:-1]  # the line head cut in two
            truncated = truncated or (bool(file_lines) and _is_listen(file_lines[-1]))
        lines.extend(file_lines)
    ports = parse_listening("\n".join(lines), exclude, hidden_addresses)
    if len(ports) > max_ports:
        return PortListing(tuple(ports[:max_ports]), truncated=True)
    return PortListing(tuple(ports), truncated=truncated)


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
