"""The swarm part's capacity rows: one container holding many workspace overlays.

With one overlay per workspace the Swarm server's container stays attached to the network of
every workspace until it is deleted, stopped ones included (see README, "Reaching ttyd"). This
attaches one container to `count` attachable overlays made as the server makes them, and reports
per block of networks the time to create one and to attach the container to it, and the manager's
dockerd memory. The peer is the first block, measured in the same run: the ratio says how an
attachment's cost grows with the number already held.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors

from . import stats
from .report import table

DOCKER_PID_FILE = Path("/var/run/docker.pid")
LABEL = "org.jupyter.popebot-code.bench-overlay"
REMOVE_TIMEOUT_S = 300.0


def _dockerd_rss_mib() -> float:
    pid = DOCKER_PID_FILE.read_text().strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in dockerd's /proc status")


def _remove_all(client: docker.DockerClient, holder: Any) -> float:
    """Remove the holder and every bench overlay; answer the seconds it took."""
    started = time.monotonic()
    holder.remove(force=True)
    deadline = started + REMOVE_TIMEOUT_S
    # The holder's attachments are swarm tasks that let go of each network a moment later.
    while left := client.networks.list(filters={"label": LABEL}):
        for network in left:
            try:
                network.remove()
            except docker.errors.NotFound:
                pass
            except docker.errors.APIError:
                if time.monotonic() > deadline:
                    raise
        time.sleep(1.0)
    return time.monotonic() - started


def bench_overlays(
    client: docker.DockerClient,
    image: str,
    count: int,
    block: int,
    budget_s: float,
    dockerd_rss_mib: Callable[[], float] = _dockerd_rss_mib,
) -> dict[str, Any]:
    """Attach one container to `count` overlays, `block` at a time; a summary per block.

    Stops after the block in which `budget_s` ran out (the table says so).
    """
    holder = client.containers.run(
        image,
        entrypoint=["sleep", "infinity"],
        name=f"popebot-code-bench-overlay-holder-{uuid.uuid4().hex[:8]}",
        network_mode="none",
        labels={LABEL: "holder"},
        detach=True,
    )
    blocks: list[dict[str, Any]] = []
    rss_start = dockerd_rss_mib()
    deadline = time.monotonic() + budget_s
    try:
        creates: list[float] = []
        joins: list[float] = []
        for index in range(count):
            started = time.perf_counter()
            network = client.networks.create(
                f"popebot-code-bench-overlay-{index}",
                driver="overlay",
                attachable=True,
                labels={LABEL: "network"},
            )
            created = time.perf_counter()
            if index == 0:  # from "none" to the first network, as a container starts out
                client.api.disconnect_container_from_network(holder.id, "none")
            network.connect(holder)
            creates.append(created - started)
            joins.append(time.perf_counter() - created)
            if len(joins) == block or index == count - 1:
                blocks.append(
                    {
                        "held": index + 1,
                        "create": stats.summarize(creates),
                        "join": stats.summarize(joins),
                        "dockerd_rss_mib": dockerd_rss_mib(),
                    }
                )
                creates, joins = [], []
                if time.monotonic() > deadline:
                    break
        interfaces = holder.exec_run(["sh", "-c", "ls /sys/class/net | wc -l"]).output
    finally:
        cleanup_s = _remove_all(client, holder)
    first = blocks[0]["join"]["p50_ms"]
    for row in blocks:
        row["join_ratio_to_first"] = stats.ratio(row["join"]["p50_ms"], first)
    return {
        "asked": count,
        "blocks": blocks,
        "dockerd_rss_start_mib": rss_start,
        "interfaces_in_holder": int(interfaces.decode().strip() or 0),
        "cleanup_s": cleanup_s,
    }


def overlay_table(results: dict[str, Any]) -> str:
    start = results["dockerd_rss_start_mib"]
    rows = [
        [
            str(row["held"]),
            f"{row['create']['p50_ms']:.0f} / {row['create']['p90_ms']:.0f}",
            f"{row['join']['p50_ms']:.0f} / {row['join']['p90_ms']:.0f}",
            "-" if row["join_ratio_to_first"] is None else f"{row['join_ratio_to_first']:.2f}",
            f"{row['dockerd_rss_mib']:.0f} ({row['dockerd_rss_mib'] - start:+.0f})",
        ]
        for row in results["blocks"]
    ]
    return (
        table(
            [
                "overlays held",
                "create p50 / p90 ms",
                "attach p50 / p90 ms",
                "attach p50 / first block's",
                "manager dockerd RSS MiB",
            ],
            rows,
        )
        + (
            f"\nstopped at {results['blocks'][-1]['held']} of {results['asked']}: --budget reached"
            if results["blocks"][-1]["held"] < results["asked"]
            else ""
        )
        + f"\nnetwork interfaces in the holder: {results['interfaces_in_holder']}; "
        f"removing it and its networks took {results['cleanup_s']:.0f} s"
    )
