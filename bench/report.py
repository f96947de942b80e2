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


def _timing_row(label: str, summary: dict[str, Any], ratio: str = "", target: str = "") -> list:
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
        target = ensure["target_ratio"]
        for state, sdk_calls in (("running", "inspect"), ("stopped", "inspect+start")):
            run = ensure[state]
            verdict = _verdict(run["ratio_p50"] <= target)
            rows.append(
                _timing_row(
                    f"ensure {state}: API",
                    run["api"],
                    _ratio(run["ratio_p50"]),
                    f"<= {target:.2f} {verdict}",
                )
            )
            rows.append(_timing_row(f"ensure {state}: SDK {sdk_calls}", run["sdk"], "1.00"))
        floor = ensure["running"]["http_floor"]
        rows.append(_timing_row("GET api (jupyter_server HTTP floor)", floor))
    for key, label in (
        ("list_records_only", "records only"),
        ("list_with_containers", "each with a container"),
    ):
        run = results.get(key)
        if not run:
            continue
        goal = run["target_p50_ms"]
        verdict = _verdict(run["api"]["p50_ms"] < goal)
        rows.append(
            _timing_row(
                f"list {run['workspaces']} ({label}): API",
                run["api"],
                target=f"p50 < {goal:.0f} ms {verdict}",
            )
        )
        rows.append(_timing_row("  its one Docker call: SDK containers()", run["sdk"]))
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


def memory_line(memory: dict[str, Any]) -> str:
    return (
        f"server RSS: {memory['rss_idle_mib']:.1f} MiB with no session, "
        f"{memory['rss_with_sessions_mib']:.1f} MiB with {memory['sessions']} idle relayed "
        f"sessions (+{memory['delta_mib']:.1f} MiB, {memory['per_session_kib']:.0f} KiB each), "
        f"{memory['rss_after_close_mib']:.1f} MiB after closing them"
    )


def terminal_verdicts(paths: dict[str, Any], targets: dict[str, float]) -> dict[str, bool]:
    relay = paths["relay"]
    return {
        "throughput_ratio": relay["throughput_ratio_vs_ttyd"] >= targets["throughput_ratio_min"],
        "echo_p50_delta": relay["echo_p50_minus_ttyd_ms"] <= targets["echo_p50_delta_ms_max"],
        "echo_p90": relay["echo"]["p90_ms"] < targets["echo_p90_ms"],
    }
