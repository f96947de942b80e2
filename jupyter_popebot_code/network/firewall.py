"""The workspace network's firewall: iptables rules as text, and the one call that applies them.

Rule text comes from pure functions (`firewall_script`), so it is checked without root;
`IptablesFirewall` applies it with one atomic `iptables-restore --noflush`. What the rules decide
is described in `network_policy`, which owns the options.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

from ..errors import FirewallError

FORWARD_CHAIN_PREFIX = "POPEBOT-FWD-"
INPUT_CHAIN_PREFIX = "POPEBOT-IN-"
# ICMP "administratively prohibited": a blocked connect fails at once with "No route to host",
# which tells a blocked destination apart from a closed port ("Connection refused").
REJECT = ["-j", "REJECT", "--reject-with", "icmp-admin-prohibited"]
IPTABLES_TIMEOUT = 30.0
LINK_LOCAL = "169.254.0.0/16"
ICC_OPTION = "com.docker.network.bridge.enable_icc"


@dataclass(frozen=True)
class Destination:
    """An allowed destination: a network, optionally one port (TCP and UDP)."""

    network: ipaddress.IPv4Network
    port: int | None = None

    def match(self) -> list[list[str]]:
        """iptables match arguments; a port needs one rule per protocol."""
        if self.port is None:
            return [["-d", str(self.network)]]
        return [
            ["-d", str(self.network), "-p", proto, "--dport", str(self.port)]
            for proto in ("tcp", "udp")
        ]


def parse_network(text: str) -> ipaddress.IPv4Network:
    """An IPv4 address or CIDR block, strictly (host bits set is a mistake, not a wish)."""
    try:
        network = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as err:
        raise ValueError(f"{text!r} is not an IPv4 address or network: {err}") from None
    if not isinstance(network, ipaddress.IPv4Network):
        raise ValueError(f"{text!r}: only IPv4 is enforced (workspace networks have no IPv6)")
    return network


def parse_destination(text: str) -> Destination:
    """'ADDRESS', 'ADDRESS/PREFIX', 'ADDRESS:PORT' or 'ADDRESS/PREFIX:PORT'."""
    where, colon, port_text = text.strip().partition(":")
    port: int | None = None
    if colon:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
        port = int(port_text)
    return Destination(parse_network(where), port)


@dataclass(frozen=True)
class NetworkView:
    """What the rules need to know about the workspace network."""

    network_id: str
    bridge: str
    subnet: ipaddress.IPv4Network | None = None

    @property
    def forward_chain(self) -> str:
        return FORWARD_CHAIN_PREFIX + self.network_id[:12]

    @property
    def input_chain(self) -> str:
        return INPUT_CHAIN_PREFIX + self.network_id[:12]

    def jumps(self) -> list[list[str]]:
        """The rules that send the bridge's traffic into our chains (first in their chain)."""
        return [
            ["DOCKER-USER", "-i", self.bridge, "-j", self.forward_chain],
            # Answers coming back into the bridge (see firewall_script) and nothing new.
            ["DOCKER-USER", "-o", self.bridge, "-j", self.forward_chain],
            ["INPUT", "-i", self.bridge, "-j", self.input_chain],
        ]


def network_view(attrs: dict[str, Any]) -> NetworkView:
    """Read a Docker network's inspect answer; refuse anything the rules cannot cover."""
    if attrs.get("Driver") != "bridge":
        raise FirewallError(f"Network {attrs.get('Name')!r} is not a bridge network.")
    if attrs.get("EnableIPv6"):
        # The rules are IPv4 only: an IPv6 path would bypass all of them.
        raise FirewallError(
            f"Network {attrs.get('Name')!r} has IPv6 enabled, which the workspace firewall does "
            "not cover: use a network without IPv6."
        )
    options = attrs.get("Options") or {}
    bridge = options.get("com.docker.network.bridge.name") or "br-" + attrs["Id"][:12]
    subnets = [
        parse_network(c["Subnet"])
        for c in (attrs.get("IPAM") or {}).get("Config") or []
        if ":" not in c.get("Subnet", ":")
    ]
    if not subnets:
        raise FirewallError(f"Network {attrs.get('Name')!r} has no IPv4 subnet.")
    return NetworkView(attrs["Id"], bridge, subnets[0])


@dataclass(frozen=True)
class Members:
    """Addresses on the network the rules name: ttyd clients, and workspaces by owner."""

    ttyd_clients: tuple[str, ...] = ()
    owners: dict[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicySettings:
    """The options that shape the rules, validated."""

    isolate: bool = True
    same_owner: bool = False
    block_host: bool = True
    blocked: tuple[ipaddress.IPv4Network, ...] = (ipaddress.IPv4Network(LINK_LOCAL),)
    allowed: tuple[Destination, ...] = ()
    # Rejected before anything is allowed (an image registry: no workspace may push to it).
    denied: tuple[Destination, ...] = ()


def firewall_script(view: NetworkView, members: Members, settings: PolicySettings) -> str:
    """iptables-restore input that (re)writes both chains of one network, and nothing else."""
    fwd, inp = view.forward_chain, view.input_chain
    bridge = view.bridge
    rules: list[list[str]] = []
    # Answers coming into the bridge to connections these rules let through: accepted here,
    # since an `internal` network has no such rule of Docker's before its own DROPs.
    established = ["-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED"]
    rules.append([fwd, "-o", bridge, *established, "-j", "ACCEPT"])
    # Forwarded traffic from the bridge; Docker's own rules still see whatever we RETURN.
    rules.append([fwd, "-i", bridge, *established, "-j", "RETURN"])
    for destination in settings.denied:
        rules += [[fwd, "-i", bridge, *match, *REJECT] for match in destination.match()]
    for destination in settings.allowed:
        rules += [[fwd, "-i", bridge, *match, "-j", "ACCEPT"] for match in destination.match()]
    if settings.isolate:
        # Docker's icc=false DROP comes after DOCKER-USER: the exceptions must ACCEPT here.
        to_bridge = [fwd, "-o", bridge]
        for client in members.ttyd_clients:
            # The server's own container: ttyd (7681) and every port a preview may open.
            # Only workspaces' traffic is rejected below; they never appear as clients.
            rules.append([*to_bridge, "-s", client, "-p", "tcp", "-j", "ACCEPT"])
        if settings.same_owner:
            for addresses in members.owners.values():
                pairs = [(a, b) for a in addresses for b in addresses if a != b]
                rules += [[*to_bridge, "-s", a, "-d", b, "-j", "ACCEPT"] for a, b in pairs]
        # Explicit, so isolation holds even on a network made with inter-container traffic on.
        rules.append([fwd, "-o", bridge, *REJECT])
    rules += [[fwd, "-d", str(network), *REJECT] for network in settings.blocked]
    # Traffic to the host's own addresses (the gateway, eth0, other bridges' gateways).
    rules.append([inp, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "RETURN"])
    for destination in settings.denied:
        rules += [[inp, *match, *REJECT] for match in destination.match()]
    for destination in settings.allowed:
        rules += [[inp, *match, "-j", "RETURN"] for match in destination.match()]
    if settings.block_host:
        rules.append([inp, *REJECT])
    lines = ["*filter", f":{fwd} - [0:0]", f":{inp} - [0:0]"]
    lines += ["-A " + " ".join(rule) for rule in rules]
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


class IptablesFirewall:
    """Runs iptables on this machine (it must be root in the Docker host's network namespace)."""

    def __init__(self, iptables: str = "iptables") -> None:
        self.iptables = iptables
        self.iptables_restore = iptables + "-restore"

    def _run(
        self, *command: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=IPTABLES_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise FirewallError(f"Cannot run {command[0]}: {err}") from err
        if check and done.returncode != 0:
            raise FirewallError(f"{' '.join(command)} failed: {done.stderr.strip()}")
        return done

    def apply(self, view: NetworkView, script: str) -> None:
        """Write both chains in one transaction, then make sure the jumps to them are first."""
        self._run(self.iptables_restore, "-w", "--noflush", stdin=script)
        for jump in view.jumps():
            chain, rule = jump[0], jump[1:]
            if self._run(self.iptables, "-w", "-C", chain, *rule, check=False).returncode != 0:
                self._run(self.iptables, "-w", "-I", chain, "1", *rule)

    def remove(self, network_id: str) -> None:
        """Delete the jumps to one network's chains and the chains; missing ones are fine."""
        fwd = FORWARD_CHAIN_PREFIX + network_id[:12]
        inp = INPUT_CHAIN_PREFIX + network_id[:12]
        listing = self._read_rules()
        for line in listing:
            parts = line.split()
            if parts[:1] == ["-A"] and parts[-2:] in (["-j", fwd], ["-j", inp]):
                self._run(self.iptables, "-w", "-D", *parts[1:], check=False)
        for chain in (fwd, inp):
            if f"-N {chain}" in listing:
                self._run(self.iptables, "-w", "-F", chain)
                self._run(self.iptables, "-w", "-X", chain)

    def remove_stale(self, existing_ids: set[str]) -> list[str]:
        """Remove the chains of networks that no longer exist; answer their short ids."""
        stale = sorted(self.installed_networks() - {i[:12] for i in existing_ids})
        for short_id in stale:
            self.remove(short_id)
        return stale

    def installed_networks(self) -> set[str]:
        """Short ids of the networks that have chains of ours."""
        found = set()
        for line in self._read_rules():
            for prefix in (FORWARD_CHAIN_PREFIX, INPUT_CHAIN_PREFIX):
                if line.startswith(f"-N {prefix}"):
                    found.add(line[len(f"-N {prefix}") :])
        return found

    def _read_rules(self) -> list[str]:
        return self._run(self.iptables, "-w", "-S").stdout.splitlines()


def firewall_unavailable_reason(iptables: str, bridge: str) -> str | None:
    """Why this process cannot manage the bridge's firewall, or None when it can."""
    if sys.platform != "linux":
        return "the server does not run on Linux"
    if os.geteuid() != 0:
        return "the server does not run as root"
    if shutil.which(iptables) is None or shutil.which(iptables + "-restore") is None:
        return f"{iptables} and {iptables}-restore are not on PATH"
    try:
        socket.if_nametoindex(bridge)
    except OSError:
        # Inside a container, or talking to a remote engine: the bridge is not here.
        return f"the bridge {bridge} is not in this network namespace"
    return None
