"""Run the benchmarks: `.venv/bin/python -m bench [--only ensure,list,relay]`."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import docker.errors

from . import (
    api_bench,
    docker_env,
    events_bench,
    flood_bench,
    keeper_bench,
    network_bench,
    ports_bench,
    preview_bench,
    report,
    soak,
    swarm_bench,
    terminal_bench,
)
from .cpu import CpuProbe, container_cpu_file
from .server import OWNER, BenchServer

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUTPUT = ROOT / "bench" / "results" / "latest.json"
DEFAULT_IMAGE = "jupyter-popebot-code-workspace:latest"
PARTS = (
    "ensure",
    "list",
    "relay",
    "keepers",
    "soak",
    "preview",
    "ports",
    "flood",
    "network",
    "events",
    "swarm",
)
# "events" restarts dockerd, which every container on the machine depends on, and "swarm" makes
# the engine a swarm manager for a while: opt-in only.
DEFAULT_PARTS = ("ensure", "list", "relay", "keepers", "soak", "preview", "ports", "flood")
PARAMETERS = (
    "ensure_iterations",
    "stopped_iterations",
    "list_owners",
    "list_per_owner",
    "list_containers",
    "list_iterations",
    "rounds",
    "seq_lines",
    "echo_trips",
    "idle_sessions",
    "hog",
    "cpu_limit",
    "keeper_image",
    "soak_idle",
    "soak_streams",
    "soak_lines",
    "preview_mib",
    "preview_rounds",
    "preview_requests",
    "ports_sockets",
    "ports_clients",
    "ports_seconds",
    "ports_rounds",
    "flood_seconds",
    "flood_rounds",
    "flood_kinds",
    "flood_preview_clients",
    "flood_preview_mib",
    "network_creates",
    "swarm_creates",
    "swarm_ensures",
    "swarm_overlays",
    "swarm_overlay_block",
    "budget",
)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_PARTS),
        help=(
            f"comma-separated parts to run: {', '.join(PARTS)} (default: all but events, "
            "which restarts dockerd, and swarm, which makes the engine a swarm manager)"
        ),
    )
    parser.add_argument("--image", default=DEFAULT_IMAGE, help="workspace image")
    parser.add_argument(
        "--keeper-image",
        default=None,
        help="image for the session keepers part (default: --image); see README for one with "
        "dtach and abduco",
    )
    parser.add_argument("--ensure-iterations", type=int, default=200)
    parser.add_argument("--stopped-iterations", type=int, default=20)
    parser.add_argument(
        "--list-owners", type=int, default=1000, help="owners in the store for the list part"
    )
    parser.add_argument(
        "--list-per-owner", type=int, default=100, help="workspace records per owner"
    )
    parser.add_argument(
        "--list-containers",
        type=int,
        default=10_000,
        help="containers created (not started) for the records, spread over the owners",
    )
    parser.add_argument("--list-iterations", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5, help="terminal rounds per path")
    parser.add_argument("--seq-lines", type=int, default=2_000_000)
    parser.add_argument("--echo-trips", type=int, default=50)
    parser.add_argument(
        "--idle-sessions",
        type=int,
        default=60,
        help="idle terminals of one workspace held at once (the image's keeper takes 64 at most)",
    )
    parser.add_argument("--soak-idle", type=int, default=1000, help="idle sessions in the soak")
    parser.add_argument(
        "--soak-streams", type=int, default=50, help="sessions streaming seq in the soak"
    )
    parser.add_argument("--soak-lines", type=int, default=500_000, help="seq lines per stream")
    parser.add_argument(
        "--preview-mib",
        type=int,
        default=64,
        help=(
            "MiB per download in the preview part (at most 95: jupyter-server-proxy buffers a "
            "whole answer, and tornado's client refuses bodies over 100 MB)"
        ),
    )
    parser.add_argument("--preview-rounds", type=int, default=5, help="downloads per path")
    parser.add_argument(
        "--preview-requests", type=int, default=500, help="small GETs per path (latency)"
    )
    parser.add_argument(
        "--ports-sockets",
        type=int,
        default=15_000,
        help="listening sockets (ports and flood parts; ports 10000 up, at most 22768)",
    )
    parser.add_argument(
        "--ports-clients", type=int, default=3, help="clients polling the ports listing"
    )
    parser.add_argument(
        "--ports-seconds", type=float, default=5.0, help="seconds per phase (ports part)"
    )
    parser.add_argument(
        "--ports-rounds", type=int, default=3, help="baseline/flood phase pairs (ports part)"
    )
    parser.add_argument(
        "--flood-seconds", type=float, default=6.0, help="seconds per phase (flood part)"
    )
    parser.add_argument(
        "--flood-rounds", type=int, default=3, help="baseline/flood phase pairs (flood part)"
    )
    parser.add_argument(
        "--flood-kinds",
        default=",".join(flood_bench.KINDS),
        help="floods of the flood part, one per phase: terminal (and log), ports, preview, all",
    )
    parser.add_argument(
        "--flood-preview-clients",
        default="4,2,2",
        help="preview flood clients: small GETs, downloads, WebSocket echoes (flood part)",
    )
    parser.add_argument(
        "--flood-preview-mib", type=int, default=32, help="MiB per preview flood download"
    )
    parser.add_argument(
        "--cpu-limit",
        type=float,
        default=None,
        help="ContainerManager.cpu_limit for the shipped workspace (default: the server's, 1 CPU)",
    )
    parser.add_argument(
        "--no-hog",
        dest="hog",
        action="store_false",
        help="skip the terminal rounds with a CPU hog on every core",
    )
    parser.add_argument(
        "--network-creates",
        type=int,
        default=10,
        help="workspaces created and deleted per server (network part)",
    )
    parser.add_argument(
        "--swarm-creates", type=int, default=6, help="workspaces created per backend (swarm part)"
    )
    parser.add_argument(
        "--swarm-ensures", type=int, default=12, help="stopped → running ensures per backend"
    )
    parser.add_argument(
        "--swarm-overlays",
        type=int,
        default=0,
        help="swarm part: also attach one container to this many overlays (capacity rows)",
    )
    parser.add_argument(
        "--swarm-overlay-block", type=int, default=100, help="overlays per capacity row"
    )
    parser.add_argument(
        "--budget", type=float, default=300.0, help="seconds each timed loop may take at most"
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)
    args.parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(args.parts) - set(PARTS)
    if unknown or not args.parts:
        parser.error(f"--only takes {', '.join(PARTS)}; got {args.only!r}")
    if "preview" in args.parts and importlib.util.find_spec("jupyter_server_proxy") is None:
        parser.error(
            "the preview part measures jupyter-server-proxy beside our proxy: install the bench "
            "extra (POPEBOT_EXTRAS=lab,test,docs,bench scripts/setup.sh), or leave out preview"
        )
    return args


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def machine_info(client: docker.DockerClient) -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    package = ROOT / "jupyter_popebot_code"
    # The relay's code: the terminal package and the WebSocket plumbing it shares.
    relay_sources = [*sorted((package / "terminal").glob("*.py")), package / "web" / "websocket.py"]
    relay_hash = hashlib.sha256()
    for source in relay_sources:
        relay_hash.update(source.read_bytes())
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "docker_engine": client.version().get("Version"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        # Identifies the relay that was measured when comparing runs before/after a change.
        "relay_py_sha256": relay_hash.hexdigest()[:16],
    }


def _three(text: str) -> tuple[int, int, int]:
    """'4,2,2' -> (4, 2, 2): the preview flood's clients of each kind."""
    gets, downloads, echoes = (int(n) for n in text.split(","))
    return gets, downloads, echoes


def create_workspace(server: BenchServer, name: str = "bench") -> dict[str, Any]:
    """One real workspace through the API: the server creates and starts its container."""
    response = server.api("POST", "api/code/workspaces", json={"name": name, "repo": ""})
    if response.status_code != 201:
        raise RuntimeError(f"create answered {response.status_code}: {response.text}")
    workspace: dict[str, Any] = response.json()
    ensured = server.api("POST", f"api/code/workspaces/{workspace['id']}/ensure", data=b"")
    if ensured.status_code != 200:
        raise RuntimeError(f"ensure answered {ensured.status_code}: {ensured.text}")
    return workspace


def run(
    args: argparse.Namespace, client: docker.DockerClient, workdir: Path, results: dict[str, Any]
) -> None:
    """Run the chosen parts, filling `results` part by part (kept if a later part fails)."""
    results |= {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(client),
        "parts": args.parts,
        # Other work on a shared machine moves wall-clock figures; this says how much there was.
        "load_average_start": os.getloadavg(),
        "parameters": {key: getattr(args, key) for key in PARAMETERS},
    }
    extra = () if args.cpu_limit is None else (f"--ContainerManager.cpu_limit={args.cpu_limit}",)
    server = BenchServer(workdir, docker_env.NETWORK, args.image, extra)
    store_ids: set[str] = set()
    seeded: list[Any] = []
    try:
        docker_env.ensure_network(client)
        # Records go into the store before the server opens it; the plain-shell workspace's
        # container is made by the bench (see docker_env.start_plain_terminal).
        if "list" in args.parts:
            store_id, seeded = docker_env.seed_owners(
                server.db_path, OWNER, args.list_owners, args.list_per_owner
            )
        else:
            store_id, seeded = docker_env.seed_store(server.db_path, OWNER, 0)
        plain: list[Any] = []
        if "relay" in args.parts or "soak" in args.parts:
            plain = docker_env.seed_store(server.db_path, OWNER, 1, "bench plain shell")[1]
        keeper_records: list[Any] = []
        if "keepers" in args.parts:
            count = len(keeper_bench.KEEPERS)
            keeper_records = docker_env.seed_store(server.db_path, OWNER, count, "bench keeper")[1]
        store_ids.add(store_id)
        if "preview" in args.parts:
            # The peer, in the same server.
            server.config_py = preview_bench.jsp_config(server.workdir)
        server.start()
        workspace = create_workspace(server)
        container = workspace["container_name"]
        print(
            f"server pid {server.pid} on {server.base_url}, workspace {workspace['id']} "
            f"({container})",
            flush=True,
        )

        if "ensure" in args.parts:
            print("ensure: running and stopped container, API vs SDK ...", flush=True)
            results["ensure"] = api_bench.bench_ensure(
                server,
                client,
                workspace_id=workspace["id"],
                container=container,
                iterations=args.ensure_iterations,
                stopped_iterations=args.stopped_iterations,
                budget_s=args.budget,
            )

        if plain:
            docker_env.start_plain_terminal(client, args.image, store_id, plain[0])
            docker_env.wait_for_port(docker_env.container_ip(client, plain[0].container_name))

        if "soak" in args.parts:
            print(
                f"soak: {args.soak_idle} idle relayed sessions, then {args.soak_streams} "
                "streaming at once ...",
                flush=True,
            )
            results["soak"] = asyncio.run(
                soak.bench_soak(
                    server,
                    plain[0].id,
                    workspace["id"],
                    idle=args.soak_idle,
                    streams=args.soak_streams,
                    lines=args.soak_lines,
                    budget_s=args.budget,
                )
            )

        if "relay" in args.parts:
            print("terminals: relay, straight to ttyd, terminado ...", flush=True)
            server.api("POST", f"api/code/workspaces/{workspace['id']}/ensure").raise_for_status()
            targets = []
            for workspace_id, container_name in (
                (plain[0].id, plain[0].container_name),
                (workspace["id"], container),
            ):
                host = docker_env.container_ip(client, container_name)
                docker_env.wait_for_port(host)
                container_id = client.api.inspect_container(container_name)["Id"]
                probe = CpuProbe(server.pid, container_cpu_file(container_id))
                credential = server.ttyd_credential(workspace_id)
                targets.append(terminal_bench.TerminalTarget(workspace_id, host, credential, probe))
            terminals = asyncio.run(
                terminal_bench.bench_terminals(
                    server,
                    plain=targets[0],
                    shipped=targets[1],
                    rounds=args.rounds,
                    lines=args.seq_lines,
                    trips=args.echo_trips,
                    # The soak, run before, measures idle sessions' memory on a fresh server.
                    idle_sessions=0 if "soak" in args.parts else args.idle_sessions,
                    timeout_s=max(120.0, args.seq_lines / 10_000),
                    loads=("idle", "hog") if args.hog else ("idle",),
                )
            )
            terminals["verdicts"] = {
                name: report.terminal_verdicts(terminals[name], terminals["targets"])
                for name in report.terminal_tables(terminals)
            }
            results["terminals"] = terminals

        if "keepers" in args.parts:
            print("keepers: one container per session keeper, straight to ttyd ...", flush=True)
            results["keepers"] = keeper_bench.bench_keepers(
                server,
                client,
                args.keeper_image or args.image,
                store_id,
                keeper_records,
                rounds=args.rounds,
                lines=args.seq_lines,
                trips=args.echo_trips,
                cpu_limit=args.cpu_limit or 1.0,
                timeout_s=max(120.0, args.seq_lines / 10_000),
            )

        if "preview" in args.parts:
            print(
                "preview: downloads, small GETs, WebSocket echo: ours, jupyter-server-proxy, "
                "a bare TCP hop, straight to the app ...",
                flush=True,
            )
            server.api("POST", f"api/code/workspaces/{workspace['id']}/ensure").raise_for_status()
            results["preview"] = preview_bench.bench_preview(
                server,
                client,
                workspace["id"],
                container,
                download_mib=args.preview_mib,
                rounds=args.preview_rounds,
                requests_count=args.preview_requests,
                budget_s=args.budget,
            )

        if "ports" in args.parts:
            print(
                f"ports: {args.ports_sockets} sockets, {args.ports_clients} clients polling ...",
                flush=True,
            )
            victim = create_workspace(server, "bench victim")
            results["ports"] = ports_bench.bench_ports(
                server,
                client,
                workspace,
                victim,
                sockets=args.ports_sockets,
                clients=args.ports_clients,
                seconds=args.ports_seconds,
                rounds=args.ports_rounds,
            )

        if "flood" in args.parts:
            print(f"flood: a workspace floods ({args.flood_kinds}) ...", flush=True)
            flooder = create_workspace(server, "bench flooder")
            flood_victim = create_workspace(server, "bench flood victim")
            results["flood"] = flood_bench.bench_flood(
                server,
                client,
                flooder,
                flood_victim,
                seconds=args.flood_seconds,
                rounds=args.flood_rounds,
                kinds=tuple(args.flood_kinds.split(",")),
                sockets=args.ports_sockets,
                ports_clients=args.ports_clients,
                preview_clients=_three(args.flood_preview_clients),
                preview_mib=args.flood_preview_mib,
            )

        if "list" in args.parts:
            # The bench's workspaces made through the API.
            made = 1 + ("ports" in args.parts) + 2 * ("flood" in args.parts)
            expected = args.list_per_owner + len(plain) + len(keeper_records) + made
            total = len(seeded) + len(plain) + len(keeper_records) + made
            print(f"list: {expected} of {total} workspaces, records only ...", flush=True)
            results["list_records_only"] = api_bench.bench_list(
                server, expected, total, 0, args.list_iterations, args.budget
            )
            step = max(len(seeded) // max(args.list_containers, 1), 1)
            with_container = seeded[::step][: args.list_containers]
            print(f"list: creating {len(with_container)} containers ...", flush=True)
            seconds = docker_env.seed_containers(client, args.image, store_id, with_container)
            mine = {w.container_name or "" for w in with_container if w.user_id == OWNER}
            settle = api_bench.wait_for_statuses(server, mine, "created")
            print(
                f"list: created them in {seconds:.0f} s (listing showed them {settle:.1f} s "
                "later); measuring ...",
                flush=True,
            )
            results["list_with_containers"] = api_bench.bench_list(
                server, expected, total, len(with_container), args.list_iterations, args.budget
            )
            results["list_with_containers"]["seed_seconds"] = seconds
        if "network" in args.parts:
            print("network: create → prompt, own network vs shared network ...", flush=True)
            results["network"] = network_bench.bench_networks(
                client, server, workdir, args.image, args.network_creates, args.budget
            )
        if "swarm" in args.parts:
            print("swarm: create → prompt and ensure, Swarm vs single engine ...", flush=True)
            results["swarm"] = swarm_bench.bench_swarm(
                client,
                server,
                workdir,
                args.swarm_creates,
                args.swarm_ensures,
                args.budget,
                args.swarm_overlays,
                args.swarm_overlay_block,
            )
        if "events" in args.parts:
            print("events: restarting dockerd, then stopping a container behind the server ...")
            results["events"] = events_bench.bench_events(server, workspace["id"], container)
        results["server_rss_end_mib"] = server.rss_bytes() / 2**20
        results["load_average_end"] = os.getloadavg()
    finally:
        server.stop()
        results["cleanup"] = docker_env.cleanup(client, store_ids)


def print_report(results: dict[str, Any]) -> None:
    machine = results["machine"]
    print()
    load = ", ".join(f"{value:.1f}" for value in results["load_average_start"])
    print(
        f"{results['date']}  load average {load}  {machine['cpus']} cores {machine['cpu_model']}, "
        f"Docker {machine['docker_engine']}, Python {machine['python']}, "
        f"commit {machine['git_commit']}{' (dirty)' if machine['git_dirty'] else ''}, "
        f"relay.py {machine['relay_py_sha256']}"
    )
    if "ensure" in results or "list_records_only" in results:
        print()
        print(report.api_table(results))
    if "terminals" in results:
        terminals = results["terminals"]
        workload = terminals["workload"]
        print()
        print(
            f"terminals: seq 1 {workload['seq_lines']}, {workload['echo_trips']} echo round "
            f"trips, {workload['rounds']} rounds per path, MB = 10^6 bytes"
        )
        for name, title in report.terminal_tables(terminals).items():
            print(f"\n{title}")
            print(report.terminal_table(terminals[name]))
            waits = report.echo_wait_line(terminals[name])
            if waits:
                print(waits)
        if terminals["memory"]:
            print(report.memory_line(terminals["memory"]))
        for name, verdicts in terminals["verdicts"].items():
            summary = ", ".join(f"{k} {'ok' if ok else 'MISSED'}" for k, ok in verdicts.items())
            print(f"relay targets ({name}): {summary}")
    if "keepers" in results:
        print()
        print(report.keepers_table(results["keepers"]))
    if "soak" in results:
        print()
        print(report.soak_table(results["soak"]))
    if "preview" in results:
        print()
        print(report.preview_table(results["preview"]))
    if "ports" in results:
        print()
        print(report.ports_table(results["ports"]))
    if "flood" in results:
        print()
        print(report.flood_table(results["flood"]))
    if "network" in results:
        print()
        print(network_bench.network_table(results["network"]))
    if "swarm" in results:
        print()
        print(swarm_bench.swarm_table(results["swarm"]))
    if "events" in results:
        events = results["events"]
        print()
        print(report.events_table(events))
    load_end = ", ".join(f"{value:.1f}" for value in results.get("load_average_end", ()))
    print(f"load average at the end: {load_end}; cleanup removed: {results.get('cleanup')}")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the cleanup below still runs.
    signal.signal(signal.SIGTERM, _interrupted)
    client = docker_env.docker_client()
    try:
        client.images.get(args.image)
    except docker.errors.ImageNotFound:
        print(f"No image {args.image}: run scripts/build-image.sh first.", file=sys.stderr)
        return 2
    # Leftovers of an interrupted earlier run (recognised by the bench network) go first.
    docker_env.cleanup(client, set())
    workdir = Path(tempfile.mkdtemp(prefix="popebot-bench-"))
    started = time.monotonic()
    results: dict[str, Any] = {}
    try:
        run(args, client, workdir, results)
    except BaseException as exc:
        # What the parts before the failure measured is still a result: a 20-minute run that
        # fails in its last part keeps the others.
        results["failed"] = f"{type(exc).__name__}: {exc}"
        if "machine" in results:
            _write(args.output, results, started)
            print_report(results)
            print(f"partial results: {args.output}")
        print(f"bench failed; server log kept in {workdir / 'server.log'}", file=sys.stderr)
        raise
    _write(args.output, results, started)
    shutil.rmtree(workdir, ignore_errors=True)
    print_report(results)
    print(f"results: {args.output}")
    return 0


def _write(output: Path, results: dict[str, Any], started: float) -> None:
    results["wall_seconds"] = time.monotonic() - started
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
