"""What a workspace's user can reach from their own terminal: not the ttyd credential, not the
host's disk. Driven through the server's relay, like a user typing, against the real image."""

from __future__ import annotations

import base64
from typing import Any

import docker
import pytest

from .conftest import Api
from .terminal_client import WsFetch, terminal

# Small tmpfs sizes, so filling them is quick; the writes below are larger than both.
SMALL = {"ContainerManager": {"tmp_size": "8m", "disk_limit": "32m"}}
DUMP = "/home/coder/workspace/proc-dump"
# Everything a user can learn about the container's processes, into a file on the volume (read
# back whole, rather than scraped from a terminal screen).
DUMP_COMMAND = (
    "{ cat /proc/1/environ; cat /proc/1/cmdline; cat /proc/[0-9]*/cmdline;"
    " for f in /proc/[0-9]*/environ; do tr '\\0' '\\n' < $f; done; ps auxeww;"
    " cat /proc/$(pgrep -x ttyd)/environ; cat /proc/$(pgrep -x ttyd)/cmdline;"
    f" }} > {DUMP} 2>&1; echo dumped-$((6*7))\r"
)
# PTRACE_ATTACH to ttyd must fail; to one of the user's own processes it works, so the refusal
# is the uid's doing, not a seccomp filter's.
PTRACE_COMMAND = (
    "python3 -c 'import ctypes, os, subprocess;"
    ' libc = ctypes.CDLL(None, use_errno=True); ttyd = int(os.popen("pgrep -x ttyd").read());'
    ' own = subprocess.Popen(["sleep", "30"]);'
    ' print("traced-%d" % (6*7), libc.ptrace(16, ttyd, 0, 0), ctypes.get_errno(), "own",'
    ' libc.ptrace(16, own.pid, 0, 0), "end-%d" % (2*3)); own.kill()\'\r'
)


def _exec_as_user(container: Any, command: list[str]) -> str:
    """Run a command as the workspace user, without the credential docker exec would add."""
    result = container.exec_run(command, user="coder", environment={"TTYD_CREDENTIAL": ""})
    return result.output.decode(errors="replace")  # type: ignore[no-any-return]


async def test_the_terminal_cannot_read_or_trace_its_credential(
    api: Api, service: Any, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    credential = service.store.get(workspace["id"]).ttyd_credential
    container = docker_client.containers.get(workspace["container_name"])
    # The container does hold it (ttyd needs it): the check below is not vacuous.
    assert f"TTYD_CREDENTIAL={credential}" in container.attrs["Config"]["Env"]
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type(DUMP_COMMAND)
        await term.read_until("dumped-42", timeout=120)
        term.type(PTRACE_COMMAND)
        await term.read_until("traced-42", timeout=120)
        traced = await term.read_until("end-6")
    dump = _exec_as_user(container, ["cat", DUMP])
    # The dump did see the processes: ttyd's placeholder, the user's own environment.
    assert "--credential @TTYD_CREDENTIAL@" in dump, dump[:2000]
    assert "POPEBOT_TEST=1" in dump, dump[:2000]
    assert "/proc/1/environ: Permission denied" in dump, dump[:2000]
    password = credential.split(":", 1)[1]
    for secret in (password, base64.b64encode(credential.encode()).decode()):
        assert secret not in dump
    # EPERM (1) for ttyd, 0 (attached) for the user's own sleep.
    assert traced.split() == ["-1", "1", "own", "0", "end-6"], traced


async def test_the_terminal_sees_no_credential_after_a_restart(
    api: Api, service: Any, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    credential = service.store.get(workspace["id"]).ttyd_credential
    container = docker_client.containers.get(workspace["container_name"])
    container.restart(timeout=5)
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type(DUMP_COMMAND)
        await term.read_until("dumped-42", timeout=120)
    dump = _exec_as_user(container, ["cat", DUMP])
    assert "--credential @TTYD_CREDENTIAL@" in dump, dump[:2000]
    assert credential.split(":", 1)[1] not in dump


@pytest.mark.parametrize("server_settings", [SMALL])
async def test_writes_stop_at_the_tmpfs_and_disk_sizes(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        await term.read_until("$ ")
        # Twice /tmp's size, and more than the volume (which holds the home folder) holds.
        term.type("head -c 16M /dev/zero > /tmp/fill || echo tmp-full-$((1+1))\r")
        filled = await term.read_until("tmp-full-2", timeout=120)
        term.type("head -c 48M /dev/zero > ~/fill || echo home-full-$((1+1))\r")
        filled += await term.read_until("home-full-2", timeout=120)
        term.type("touch /var/fill /usr/fill || echo root-ro-$((1+1))\r")
        filled += await term.read_until("root-ro-2", timeout=120)
        # The workspace volume (the user's files) stays writable.
        term.type("echo kept > ~/workspace/kept && echo vol-ok-$((1+1))\r")
        filled += await term.read_until("vol-ok-2", timeout=120)
    assert filled.count("No space left on device") >= 2, filled
    assert "Read-only file system" in filled, filled
    container = docker_client.containers.get(workspace["container_name"])
    sizes = _exec_as_user(container, ["stat", "-c", "%s", "/tmp/fill", "/home/coder/fill"])
    tmp_bytes, home_bytes = (int(word) for word in sizes.split())
    assert tmp_bytes <= 8 * 1024 * 1024
    assert home_bytes <= 32 * 1024 * 1024
    # Nothing reached the container's layer on the host's disk.
    assert container.attrs["HostConfig"]["ReadonlyRootfs"] is True
    (listed,) = docker_client.api.containers(filters={"id": container.id}, size=True)
    assert listed.get("SizeRw", 0) < 1024 * 1024, listed.get("SizeRw")
