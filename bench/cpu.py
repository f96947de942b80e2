"""CPU seconds spent by each party of a run: the server, this client, the container, the box.

On a 2-core machine shared with other work, wall-clock throughput moves with the neighbours;
CPU seconds per megabyte for the server process does not, so it shows the relay's own cost.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")
_CGROUP_ROOTS = (
    Path("/sys/fs/cgroup/cpuacct/docker"),  # cgroup v1, cgroupfs driver
    Path("/sys/fs/cgroup/cpu,cpuacct/docker"),
    Path("/sys/fs/cgroup/system.slice"),  # cgroup v2, systemd driver: docker-<id>.scope
    Path("/sys/fs/cgroup/docker"),  # cgroup v2, cgroupfs driver
)


def process_cpu_s(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / _TICKS, int(fields[12]) / _TICKS


def own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def machine_busy_s() -> float:
    """Busy CPU seconds of the whole machine, every core, everyone's work."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    return (sum(values[:8]) - idle) / _TICKS


def container_cpu_file(container_id: str) -> Path | None:
    """The cgroup file that counts a container's CPU time, where this machine keeps it."""
    for root in _CGROUP_ROOTS:
        for candidate in (
            root / container_id / "cpuacct.usage",
            root / container_id / "cpu.stat",
            root / f"docker-{container_id}.scope" / "cpu.stat",
        ):
            if candidate.exists():
                return candidate
    return None


def _cgroup_cpu_s(path: Path) -> float:
    text = path.read_text()
    if path.name == "cpuacct.usage":
        return int(text) / 1e9
    for line in text.splitlines():
        if line.startswith("usage_usec"):
            return int(line.split()[1]) / 1e6
    return 0.0


@dataclass(frozen=True)
class CpuSnapshot:
    server_user_s: float
    server_sys_s: float
    client_s: float
    container_s: float | None
    machine_s: float


@dataclass(frozen=True)
class CpuProbe:
    server_pid: int
    container_file: Path | None

    def snapshot(self) -> CpuSnapshot:
        server_user, server_sys = process_cpu_s(self.server_pid)
        return CpuSnapshot(
            server_user_s=server_user,
            server_sys_s=server_sys,
            client_s=own_cpu_s(),
            container_s=_cgroup_cpu_s(self.container_file) if self.container_file else None,
            machine_s=machine_busy_s(),
        )

    @staticmethod
    def spent(before: CpuSnapshot, after: CpuSnapshot) -> dict[str, float | None]:
        container = None
        if before.container_s is not None and after.container_s is not None:
            container = after.container_s - before.container_s
        server_user = after.server_user_s - before.server_user_s
        server_sys = after.server_sys_s - before.server_sys_s
        return {
            "server_cpu_s": server_user + server_sys,
            "server_sys_s": server_sys,
            "client_cpu_s": after.client_s - before.client_s,
            "container_cpu_s": container,
            "machine_busy_s": after.machine_s - before.machine_s,
        }
