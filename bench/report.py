"""Plain-text tables of a bench run, and the targets each result is held to."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])


def _ms(value: float) -> str:
    return f"{value:.2f}" if value < 100 else f"{value:.0f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cpu(seconds: float | None, per_frame_us: float | None) -> str:
    if not seconds or per_frame_us is None:
        return "-"
    return f"{seconds:.2f} ({per_frame_us:.0f})"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _timing_row(
    label: str, summary: dict[str, Any], ratio: str = "", target: str = ""
) -> list[str]:
    return [
        label,
        _ms(summary["p50_ms"]),
        _ms(summary["p90_ms"]),
        _ms(summary["mean_ms"]),
        str(summary["n"]),
        ratio,
        target,
    ]


def api_table(results: dict[str, Any]) -> str:
    rows = []
    ensure = results.get("ensure")
    if ensure:
        floor = ensure["running"]["http_floor"]
        running = ensure["running"]
        over = running["api"]["p50_ms"] - floor["p50_ms"]
        goal = ensure["target_over_floor_ms"]
        rows.append(
            _timing_row(
                "ensure running: API",
                running["api"],
                _ratio(running["ratio_p50"]),
                f"<= floor + {goal:.1f} ms: {over:+.2f} {_verdict(over <= goal)}",
            )
        )
        rows.append(_timing_row("ensure running: SDK inspect (for scale)", running["sdk"], "1.00"))
        rows.append(_timing_row("GET api (jupyter_server's cheapest route)", floor))
        stopped = ensure["stopped"]
        target = ensure["target_ratio"]
        rows.append(
            _timing_row(
                "ensure stopped: API",
                stopped["api"],
                _ratio(stopped["ratio_p50"]),
                f"<= {target:.2f} {_verdict(stopped['ratio_p50'] <= target)}",
            )
        )
        rows.append(_timing_row("ensure stopped: SDK inspect+start", stopped["sdk"], "1.00"))
    for key in ("list_records_only", "list_with_containers"):
        run = results.get(key)
        if not run:
            continue
        p50, p90 = run["api"]["p50_ms"], run["api"]["p90_ms"]
        ok = p50 < run["target_p50_ms"] and p90 < run["target_p90_ms"]
        where = f"{run['store_workspaces']:,} in the store"
        if run["containers"]:
            where += f", {run['containers']:,} containers"
        rows.append(
            _timing_row(
                f"list {run['workspaces']} of one owner ({where}): API",
                run["api"],
                target=(
                    f"p50 < {run['target_p50_ms']:.0f}, p90 < {run['target_p90_ms']:.0f} ms "
                    f"{_verdict(ok)}"
                ),
            )
        )
        rows.append(_timing_row("  GET api in the same loop", run["http_floor"]))
    headers = ["operation", "p50 ms", "p90 ms", "mean ms", "n", "API/SDK p50", "target"]
    return table(headers, rows)


_PATH_LABELS = {
    "relay": "relay (api/ws/code)",
    "ttyd": "straight to ttyd",
    "terminado": "JupyterLab terminal (terminado)",
}


def terminal_table(paths: dict[str, Any]) -> str:
    rows = []
    for kind, label in _PATH_LABELS.items():
        if kind not in paths:
            continue
        run = paths[kind]
        rows.append(
            [
                label,
                f"{run['mb_per_s_median']:.1f} "
                f"({run['mb_per_s_min']:.1f}-{run['mb_per_s_max']:.1f})",
                f"{run['bytes_median'] / 1e6:.1f}",
                f"{run['seconds_median']:.2f}",
                _ms(run["echo"]["p50_ms"]),
                _ms(run["echo"]["p90_ms"]),
                _ratio(run.get("throughput_ratio_vs_ttyd")),
                _ratio(run.get("time_ratio_vs_ttyd")),
                f"{run.get('echo_p50_minus_ttyd_ms', 0.0):+.2f}",
                _cpu(run.get("server_cpu_s_median"), run.get("server_cpu_us_per_frame")),
            ]
        )
    headers = [
        "path",
        "MB/s median (min-max)",
        "MB recv",
        "s to last line",
        "echo p50 ms",
        "echo p90 ms",
        "MB/s vs ttyd",
        "speed vs ttyd",
        "p50 - ttyd ms",
        "server CPU s (us/frame)",
    ]
    return table(headers, rows)


def echo_wait_line(paths: dict[str, Any]) -> str | None:
    """How long the server's event loop waited for a core per echo trip (relay, terminado)."""
    parts = []
    for kind in ("relay", "terminado"):
        wait = paths.get(kind, {}).get("echo_server_wait")
        if wait:
            parts.append(f"{kind} p50 {_ms(wait['p50_ms'])} mean {_ms(wait['mean_ms'])}")
    if not parts:
        return None
    return "server event loop waiting for a core per echo trip (ms): " + ", ".join(parts)


def memory_line(memory: dict[str, Any]) -> str:
    return (
        f"server RSS: {memory['rss_idle_mib']:.1f} MiB with no session, "
        f"{memory['rss_with_sessions_mib']:.1f} MiB with {memory['sessions']} idle relayed "
        f"sessions (+{memory['delta_mib']:.1f} MiB, {memory['per_session_kib']:.0f} KiB each), "
        f"{memory['rss_after_close_mib']:.1f} MiB after closing them"
    )


_TABLE_TITLES = {
    "plain": (
        "ttyd serving a plain bash (no session keeper): the transports compared on the same bytes"
    ),
    "shipped": (
        "the workspace image as shipped (ttyd -> workspace-session -> bash, 1 CPU) against\n"
        "JupyterLab's terminal (plain shell on the host); compare time to last line"
    ),
}


def terminal_tables(terminals: dict[str, Any]) -> dict[str, str]:
    """Key -> title of every terminal table in a run (idle, then with the CPU hog)."""
    tables = {}
    for load in terminals.get("loads", ["idle"]):
        suffix = "" if load == "idle" else f"_{load}"
        note = "" if load == "idle" else " -- with a CPU hog on every core"
        for name, title in _TABLE_TITLES.items():
            if name + suffix in terminals:
                tables[name + suffix] = title + note
    return tables


def terminal_verdicts(paths: dict[str, Any], targets: dict[str, float]) -> dict[str, bool]:
    """The relay against straight-to-ttyd (same container) and JupyterLab's terminal."""
    relay = paths["relay"]
    verdicts = {
        "speed_vs_ttyd": relay["time_ratio_vs_ttyd"] >= targets["throughput_ratio_min"],
        "echo_p90": relay["echo"]["p90_ms"] < targets["echo_p90_ms"],
    }
    peer = paths.get("terminado")
    if peer:
        verdicts["last_line_vs_jupyterlab"] = relay["seconds_median"] <= peer["seconds_median"]
        verdicts["echo_p50_vs_jupyterlab"] = relay["echo"]["p50_ms"] <= peer["echo"]["p50_ms"]
    return verdicts


def keepers_table(keepers: dict[str, Any]) -> str:
    """Session keepers straight to ttyd (same image, same CPU limit) and JupyterLab's terminal."""
    rows = []
    peer = keepers["terminado"]
    for name, run in keepers["keepers"].items():
        per_mb = run["container_cpu_s_per_mb"]
        rows.append(
            [
                name,
                "yes" if run["keeps_screen"] else "no",
                f"{run['seconds_median']:.2f} "
                f"({min(r['seconds'] for r in run['runs']):.2f}-"
                f"{max(r['seconds'] for r in run['runs']):.2f})",
                f"{run['time_vs_terminado']:.2f}",
                f"{run['bytes_median'] / 1e6:.1f}",
                _ms(run["echo"]["p50_ms"]),
                _ms(run["echo"]["p90_ms"]),
                "-" if run["container_cpu_s_median"] is None
                else f"{run['container_cpu_s_median']:.2f}",
                "-" if per_mb is None else f"{per_mb * 1000:.0f}",
            ]
        )  # fmt: skip
    rows.append(
        [
            "JupyterLab terminal (terminado, host)",
            "no",
            f"{peer['seconds_median']:.2f} "
            f"({min(r['seconds'] for r in peer['runs']):.2f}-"
            f"{max(r['seconds'] for r in peer['runs']):.2f})",
            "1.00",
            f"{peer['bytes_median'] / 1e6:.1f}",
            _ms(peer["echo"]["p50_ms"]),
            _ms(peer["echo"]["p90_ms"]),
            "-",
            "-",
        ]
    )
    headers = [
        "session keeper (ttyd straight)",
        "screen on reattach",
        "s to last line (min-max)",
        "time / JupyterLab",
        "MB recv",
        "echo p50 ms",
        "echo p90 ms",
        "container CPU s",
        "CPU ms per MB",
    ]
    title = (
        f"session keepers, image {keepers['image']}, {keepers['cpu_limit']:g} CPU each, "
        "ttyd -> keeper -> bash -l"
    )
    return title + "\n" + table(headers, rows)


def soak_table(soak: dict[str, Any]) -> str:
    """The soak's figures against their targets."""
    targets = soak["targets"]
    after = soak["rss_after_mib"] - soak["rss_baseline_mib"]
    rows = [
        [
            f"streams whose SHA-256 matches "
            f"({soak['stream_mb']:.0f} MB in {soak['stream_s']:.1f} s)",
            f"{soak['streams_matching']} of {soak['streams']}",
            f"all {_verdict(soak['streams_matching'] == soak['streams'])}",
        ],
        [
            f"server memory per idle session ({soak['idle_sessions']} open)",
            f"{soak['per_idle_session_kib']:.1f} KiB",
            f"< {targets['per_idle_session_kib']} KiB "
            f"{_verdict(soak['per_idle_session_kib'] < targets['per_idle_session_kib'])}",
        ],
        [
            f"REST list p50 / p90 during the streams (n={soak['list']['n']})",
            f"{_ms(soak['list']['p50_ms'])} / {_ms(soak['list']['p90_ms'])} ms",
            f"p50 < {targets['list_p50_ms']} ms "
            f"{_verdict(soak['list']['p50_ms'] < targets['list_p50_ms'])}",
        ],
        [
            f"interactive echo p50 / p99 during the streams (n={soak['echo']['n']})",
            f"{_ms(soak['echo']['p50_ms'])} / {_ms(soak['echo']['p99_ms'])} ms",
            f"p99 < {targets['echo_p99_ms']} ms "
            f"{_verdict(soak['echo']['p99_ms'] < targets['echo_p99_ms'])}",
        ],
        [
            "server RSS: baseline / with idle sessions / after closing all",
            f"{soak['rss_baseline_mib']:.1f} / {soak['rss_with_idle_mib']:.1f} / "
            f"{soak['rss_after_mib']:.1f} MiB",
            f"after <= baseline + {targets['after_over_baseline_mib']} MiB "
            f"{_verdict(after <= targets['after_over_baseline_mib'])}",
        ],
        [
            "the same idle sessions again, rounds: RSS after closing each",
            " / ".join(f"{value:.1f}" for value in soak["rss_after_each_round_mib"]) + " MiB",
            "flat from round to round (reuse, not a leak)",
        ],
    ]
    return table(["soak", "measured", "target"], rows)


def events_table(events: dict[str, Any]) -> str:
    """dockerd restarted, a container stopped behind the server's back: when listing knew."""
    rows = [
        [
            "engine away (dockerd stopped until it answered again)",
            f"{events['engine_down_s']:.1f} s",
            "",
        ],
        [
            "listing shows 'running' (restarted by unless-stopped) after the engine is back",
            "never"
            if events["running_shown_after_engine_up_s"] is None
            else f"{events['running_shown_after_engine_up_s']:.2f} s",
            f"<= {events['target_s']:.0f} s",
        ],
        [
            f"then stopped behind the server's back: listing shows {events['true_state']!r} "
            f"(stopped {events['stop_after_engine_up_s']:.1f} s after it was)",
            f"{events['shown_after_engine_up_s']:.2f} s ({events['shown_after_stop_s']:.2f} s "
            "after the stop)",
            f"<= {events['target_s']:.0f} s {_verdict(events['ok'])}",
        ],
    ]
    return table(["event stream across a dockerd restart", "measured", "target"], rows)


def preview_table(preview: dict[str, Any]) -> str:
    """Our preview proxy, jupyter-server-proxy and straight to the app, with ratios and targets."""
    rows = []
    labels = (
        ("proxy", "our preview proxy"),
        ("jsp", "jupyter-server-proxy"),
        ("hop", "a bare TCP hop (bench.tcp_hop)"),
        ("direct", "straight to the app"),
    )
    for name, label in labels:
        path = preview[name]
        latency, echo = path["latency"], path["echo"]
        rows.append(
            [
                label,
                f"{path['throughput_mb_s_median']:.0f}",
                _ms(latency["p50_ms"]),
                _ms(latency["p90_ms"]),
                _ms(echo["p50_ms"]),
                _ms(echo["p90_ms"]),
            ]
        )
    api = preview["api"]["latency"]
    rows.append(["GET api (server floor)", "", _ms(api["p50_ms"]), _ms(api["p90_ms"]), "", ""])
    for peer, label in (
        ("jsp", "ours / jupyter-server-proxy"),
        ("hop", "ours / a bare TCP hop"),
        ("direct", "ours / straight"),
    ):
        r = preview["ratios"][peer]
        rows.append(
            [
                label,
                _ratio(r["throughput"]),
                _ratio(r["latency_p50"]),
                _ratio(r["latency_p90"]),
                _ratio(r["echo_p50"]),
                _ratio(r["echo_p90"]),
            ]
        )
    title = (
        f"preview: {preview['download_mib']} MiB downloads (median MB/s), small GETs and "
        f"WebSocket echo round trips (ms); server RSS after: {preview['server_rss_mib']:.0f} MiB"
    )
    headers = ["path", "MB/s", "GET p50", "GET p90", "echo p50", "echo p90"]
    verdicts = "\n".join(
        f"  {'met' if met else 'NOT met'}: {name}" for name, met in preview["verdicts"].items()
    )
    cpu_rows = [
        [
            label,
            f"{preview[name]['download_cpu']['machine_busy_cores']:.2f}",
            f"{preview[name]['download_cpu']['client_cpu_s_per_gb']:.2f}",
            f"{preview[name]['download_cpu']['server_cpu_s_per_gb']:.2f}",
            f"{preview[name]['download_cpu']['container_cpu_s_per_gb']:.2f}",
        ]
        for name, label in labels
    ]
    cpu_headers = ["downloads: CPU", "busy cores", "client s/GB", "server (hop) s/GB", "app s/GB"]
    return (
        title
        + "\n"
        + table(headers, rows)
        + "\n"
        + table(cpu_headers, cpu_rows)
        + "\ntargets:\n"
        + verdicts
    )


def ports_table(ports: dict[str, Any]) -> str:
    """Another workspace's GET alone and while clients flood one workspace's ports listing."""
    rows = []
    for name, label in (("baseline", "alone (baseline)"), ("flooded", "during the flood")):
        row = ports[name]
        rows.append(
            [label, _ms(row["p50_ms"]), _ms(row["p90_ms"]), _ms(row["p99_ms"]), str(row["n"])]
        )
    listing = ports["listing"]
    if listing:
        rows.append(
            [
                "the flood's listings",
                _ms(listing["p50_ms"]),
                _ms(listing["p90_ms"]),
                _ms(listing["p99_ms"]),
                str(listing["n"]),
            ]
        )
    title = (
        f"ports: {ports['clients']} clients polling the listing of a workspace with "
        f"{ports['sockets']} listening sockets ({ports['listed_ports']} listed, truncated: "
        f"{ports['truncated']}, {ports['listing_bytes']} bytes), {ports['rounds']} x "
        f"{ports['seconds_per_phase']:.0f} s per phase; execs in it: "
        f"{ports['execs_in_flooded_container']} ({ports['execs_per_second'] or 0:.1f}/s)"
    )
    headers = ["another workspace's GET", "p50 ms", "p90 ms", "p99 ms", "n"]
    return title + "\n" + table(headers, rows)


def flood_table(flood: dict[str, Any]) -> str:
    """Another workspace's echo and GET alone and under each kind of flood of one workspace."""
    labels = {
        "terminal": "terminal + log flood",
        "ports": "ports listing flood",
        "preview": "preview flood",
        "all": "all four at once",
    }
    rows = []
    for what, label in (("echo", "keystroke echo (relay)"), ("get", "GET workspaces/{id}")):
        phases = [("alone", flood["baseline"])]
        phases += [(f"during the {labels.get(k, k)}", v) for k, v in flood["flooded"].items()]
        for when, phase in phases:
            row = phase[what]
            rows.append(
                [
                    f"{label}, {when}",
                    _ms(row["p50_ms"]),
                    _ms(row["p90_ms"]),
                    _ms(row["p99_ms"]),
                    str(row["n"]),
                ]
            )
    before, after = flood["container_log_bytes_before"], flood["container_log_bytes_after"]
    log = "-" if before is None or after is None else f"{before / 1e6:.1f} -> {after / 1e6:.1f} MB"
    clients = flood["preview_clients"]
    title = (
        f"flood: one workspace floods its terminal and container log (log files {log}), its "
        f"ports listing ({flood['ports_clients']} clients, {flood['sockets']} sockets) and its "
        f"preview ({clients['gets']} GET, {clients['downloads']} download x "
        f"{flood['preview_mib']} MiB, {clients['echoes']} WebSocket echo clients); "
        f"{flood['rounds']} x {flood['seconds_per_phase']:.0f} s per phase; load average "
        f"{flood['load_average_before'][0]:.1f} -> {flood['load_average_after'][0]:.1f}"
    )
    headers = ["another workspace's", "p50 ms", "p90 ms", "p99 ms", "n"]
    rate_rows = [["none (alone)", *_flood_rates(flood["baseline"]["rates"])]]
    rate_rows += [
        [labels.get(k, k), *_flood_rates(v["rates"])] for k, v in flood["flooded"].items()
    ]
    rate_headers = ["the flood's own rates", "terminal MB/s", "listings/s", "preview GET/s",
                    "download MB/s", "echo/s", "errors", "server CPU", "machine CPU"]  # fmt: skip
    return title + "\n" + table(headers, rows) + "\n" + table(rate_headers, rate_rows)


def _flood_rates(rates: dict[str, Any]) -> list[str]:
    def cell(key: str, digits: int = 0) -> str:
        return "-" if key not in rates else f"{rates[key]:.{digits}f}"

    counts = rates.get("preview_counts", {})
    errors = rates.get("listing_errors", 0) + sum(
        n
        for key, n in counts.items()
        if key.endswith("errors") or (key.startswith("status_") and key != "status_200")
    )
    return [
        cell("terminal_mb_per_s", 1),
        cell("listings_per_s", 1),
        cell("preview_gets_per_s"),
        cell("preview_download_mb_per_s"),
        cell("preview_echoes_per_s"),
        str(errors),
        cell("server_cpu_cores", 2),
        cell("machine_busy_cores", 2),
    ]
