"""The terminal relay, through the Jupyter server, to real ttyd in real workspace containers."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
from typing import Any

import docker
import pytest
from jupyter_server._tz import utcnow
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from jupyter_popebot_code.backends.docker.manager import STORE_LABEL
from jupyter_popebot_code.errors import (
    BACKEND_LOST_REASON,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_ERROR,
    CLOSE_INVALID_PAYLOAD,
    ENGINE_DOWN_REASON,
    SESSION_ENDED_REASON,
    SHUTDOWN_REASON,
)
from jupyter_popebot_code.terminal.relay import TerminalRelay

from .conftest import USER_HEADER, Api, HeaderIdentityProvider, wait_for
from .docker_proxy import DockerSocketProxy
from .terminal_client import Terminal, WsFetch, refusal, relay_fetch, terminal

MULTI_USER = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}
# The largest frame ttyd sends: one pty read (libuv reads at most 64 KiB) plus the type byte.
TTYD_MAX_FRAME = 64 * 1024 + 1


@pytest.fixture
def relays(jp_serverapp: Any) -> TerminalRelay:
    """The server's terminal relay: its options and the relays open right now."""
    return jp_serverapp.web_app.settings["jupyter_popebot_code"].terminal_relay  # type: ignore[no-any-return]


def settings(**sections: dict[str, Any]) -> dict[str, Any]:
    """Server settings for a test: the given option sections."""
    return {section: dict(values) for section, values in sections.items()}


def container_of(docker_client: docker.DockerClient, workspace: dict[str, Any]) -> Any:
    return docker_client.containers.get(workspace["container_name"])


def raw_ttyd(
    docker_client: docker.DockerClient, service: Any, workspace: dict[str, Any], script: str
) -> Any:
    """Replace the workspace's container by one running ttyd -> bash `script`, no session keeper.

    Byte-exact checks need ttyd running the producer itself, with nothing between that could
    replay or reorder output. Same image, name, labels, network and credential: the relay cannot
    tell.
    """
    credential = service.store.get(workspace["id"]).ttyd_credential
    ttyd = ["ttyd", "--writable", "--port", "7681", "--credential", credential]
    return replace_container(docker_client, workspace, [*ttyd, "bash", "-c", script])


def replace_container(
    docker_client: docker.DockerClient, workspace: dict[str, Any], command: list[str]
) -> Any:
    """Replace the workspace's container by one with its image, name, labels running `command`."""
    old = container_of(docker_client, workspace)
    image, labels = old.attrs["Config"]["Image"], old.labels
    # Its own network (WorkspaceNetworks), which stays while the workspace does.
    network = next(iter(old.attrs["NetworkSettings"]["Networks"]))
    old.remove(force=True)
    return docker_client.containers.run(
        image,
        entrypoint=command[:1],
        command=command[1:],
        name=workspace["container_name"],
        labels=labels,
        network=network,
        init=True,
        detach=True,
    )


def seq_output(count: int, end: bytes = b"END") -> tuple[int, str]:
    """Size and SHA-256 of `seq 1 count` (LF line ends) followed by `end`."""
    digest, size = hashlib.sha256(), 0
    for start in range(1, count + 1, 100_000):
        chunk = "".join(f"{i}\n" for i in range(start, min(start + 100_000, count + 1))).encode()
        digest.update(chunk)
        size += len(chunk)
    digest.update(end)
    return size + len(end), digest.hexdigest()


# `seq 1 6400000` prints 50,088,896 bytes.
SEQ_COUNT = 6_400_000
SEQ_SCRIPT = f"stty -onlcr; seq 1 {SEQ_COUNT}; printf END; exec sleep 3600"
# Longer than ttyd's default keepalive tolerates a peer that does not answer (it pings every 5 s).
STALL_SECONDS = 20


async def read_exactly(term: Terminal, size: int, digest: Any, timeout: float = 300.0) -> int:
    """Read output into `digest` until `size` bytes have arrived; answer how many did."""

    async def read() -> int:
        received = 0
        while received < size:
            data = await term.output()
            assert data is not None, f"closed after {received} bytes: {term.ws.close_reason}"
            digest.update(data)
            received += len(data)
        return received

    return await asyncio.wait_for(read(), timeout)


# -- the terminal ----------------------------------------------------------------------------


async def test_echo_round_trip_and_the_credential_stays_server_side(
    api: Api, service: Any, jp_ws_fetch: WsFetch
) -> None:
    workspace = await api.create()
    credential = service.store.get(workspace["id"]).ttyd_credential
    async with terminal(jp_ws_fetch, workspace["id"], handshake=False) as term:
        assert term.ws.selected_subprotocol == "tty"
        term.keep_frames = True
        term.handshake(token="whatever-the-browser-has")  # replaced by the relay
        term.type("echo $((6*7))-echoed\r")
        await term.read_until("42-echoed")
        for secret in (credential, base64.b64encode(credential.encode()).decode()):
            assert all(secret.encode() not in frame for frame in term.frames_seen)


async def test_resize_changes_the_terminal_size(api: Api, jp_ws_fetch: WsFetch) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type('echo "size=$(stty size)"\r')
        await term.read_until("size=24 80")
        term.resize(132, 41)
        # A resize reaches the shell's terminal a moment later (ttyd's pty, then the session
        # keeper's): a command typed right after may still see the old size, so ask again.
        for _ in range(50):
            term.type('echo "size=$(stty size)=size"\r')
            if "size=41 132=size" in await term.read_until("=size\r"):
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the terminal never took the size 41x132")


async def test_multibyte_output_through_the_session_keeper(api: Api, jp_ws_fetch: WsFetch) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type(r"printf '\u00e9\u6f22\U0001F600-%s\n' wide" + "\r")
        await term.read_until("é漢😀-wide")


async def test_multibyte_output_split_across_frames_arrives_intact(
    api: Api, service: Any, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    characters = 200_000
    # Four-byte characters only, written by cat in 128 KiB writes. ttyd's reads of the pty are
    # mostly 4095 bytes (the line discipline's buffer), so after any frame that ends between
    # characters a 4095-byte one ends inside one, whatever the reader's speed. (Three-byte
    # characters fit 4095 exactly, and line-sized writes could all be read whole.)
    script = (
        f"stty -onlcr; printf '😀%.0s' $(seq 1 {characters}) > /tmp/wide; cat /tmp/wide; printf END"
    )
    raw_ttyd(docker_client, service, workspace, script + "; exec sleep 3600")
    expected = "😀" * characters + "END"
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.keep_frames = True
        text = await term.read_until("END")
    assert text == expected
    outputs = [frame[1:] for frame in term.frames_seen if frame[:1] == b"0"]
    # The case that matters happened: some frame ended inside a character.
    assert any(not _decodes(output) for output in outputs)


def _decodes(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


async def test_fifty_megabytes_arrive_complete_and_in_order(
    api: Api, service: Any, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    raw_ttyd(docker_client, service, workspace, SEQ_SCRIPT)
    size, expected = seq_output(SEQ_COUNT)
    assert size > 50_000_000
    digest = hashlib.sha256()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        received = await read_exactly(term, size, digest)
    assert received == size
    assert digest.hexdigest() == expected


@pytest.mark.parametrize("server_settings", [settings(TerminalRelay={"buffer_limit": 256 * 1024})])
async def test_a_stalled_reader_holds_back_the_producer_not_server_memory(
    api: Api,
    service: Any,
    jp_ws_fetch: WsFetch,
    docker_client: docker.DockerClient,
    relays: TerminalRelay,
) -> None:
    workspace = await api.create()
    container = raw_ttyd(docker_client, service, workspace, SEQ_SCRIPT)
    size, expected = seq_output(SEQ_COUNT)
    limit = relays.buffer_limit

    def written_by_seq() -> int:
        script = 'for d in /proc/[0-9]*; do [ "$(cat $d/comm)" = seq ] && cat $d/io; done'
        result = container.exec_run(["sh", "-c", script])
        fields = dict(line.split(": ") for line in result.output.decode().splitlines())
        assert "wchar" in fields, "seq has finished: nothing held it back"
        return int(fields["wchar"])

    digest = hashlib.sha256()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        received = await read_exactly(term, 1_000_000, digest)
        # Stop reading. seq must come to a halt: every buffer on the way is full.
        previous = -1

        async def halted() -> bool:
            nonlocal previous
            now = await asyncio.to_thread(written_by_seq)
            steady, previous = now == previous, now
            return steady

        # seq has stopped while it still has output to write: it is held back, all the way.
        await wait_for(halted, timeout=60, interval=0.5)
        [relay] = relays.open_relays()
        assert relay.client_backlog.bytes <= limit + TTYD_MAX_FRAME
        assert relay.client_backlog.peak <= limit + TTYD_MAX_FRAME
        # Reading again resumes the flow; nothing was lost or reordered meanwhile.
        received += await read_exactly(term, size - received, digest)
    assert digest.hexdigest() == expected


@pytest.mark.parametrize("server_settings", [settings(TerminalRelay={"buffer_limit": 64 * 1024})])
async def test_a_reader_stalled_for_a_while_keeps_its_terminal(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    # A slow link makes the relay stop reading ttyd until the browser catches up, so ttyd cannot
    # send for that long; neither leg may give up on the other meanwhile.
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("while :; do seq 1 100000; done\r")
        await term.read_until("99999")
        await asyncio.sleep(STALL_SECONDS)  # not reading: every buffer on the way fills up
        term.type("\x03")
        term.type("echo $((8*8))-after-stall\r")
        await term.read_until("64-after-stall", timeout=120)


async def test_reconnecting_shows_the_earlier_screen(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((40+2))-before-reconnect\r")
        await term.read_until("42-before-reconnect")
    started = container_of(docker_client, workspace).attrs["State"]["StartedAt"]
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        await term.read_until("42-before-reconnect")  # the session keeper replays recent output
    state = container_of(docker_client, workspace).attrs["State"]
    assert (state["Status"], state["StartedAt"]) == ("running", started)


async def test_a_stopped_container_is_started_and_early_input_is_kept(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    await asyncio.to_thread(container_of(docker_client, workspace).stop, timeout=1)
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        # Typed before the relay has the container running and ttyd listening.
        term.type("echo $((5*5))-typed-early\r")
        await term.read_until("25-typed-early")
    assert container_of(docker_client, workspace).status == "running"


async def test_exiting_the_shell_forwards_a_normal_close(api: Api, jp_ws_fetch: WsFetch) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((1+1))-ready\r")
        await term.read_until("2-ready")
        term.type("exit\r")
        assert await term.wait_closed() == (1000, SESSION_ENDED_REASON)


async def test_a_killed_container_closes_the_terminal_with_a_reason(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((2+2))-alive\r")
        await term.read_until("4-alive")
        await asyncio.to_thread(container_of(docker_client, workspace).kill)
        assert await term.wait_closed() == (CLOSE_INTERNAL_ERROR, BACKEND_LOST_REASON)
    # Closing is all the relay does: it does not bring the container back by itself.
    assert container_of(docker_client, workspace).status == "exited"


@pytest.mark.parametrize(
    "server_settings",
    [
        {
            "ContainerManager": {"connect_via": "name"},
            # On one shared network, where connect_via is honoured (with a network per
            # workspace the relay always dials the address).
            "NetworkPolicy": {"isolate_workspaces": False},
            # The name this option had before it moved to TerminalRelay.ready_timeout still works.
            "CodeWorkspacesApp": {"terminal_ready_timeout": 1},
        }
    ],
)
async def test_an_unreachable_terminal_closes_with_a_reason(api: Api, jp_ws_fetch: WsFetch) -> None:
    # From outside Docker a container's name does not resolve, so ttyd is never reached.
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        code, reason = await term.wait_closed()
    assert code == CLOSE_INTERNAL_ERROR
    assert reason == "workspace terminal did not start within 1 s"


@pytest.mark.parametrize("server_settings", [settings(TerminalRelay={"ready_timeout": 60})])
async def test_a_container_that_stops_while_the_terminal_waits_closes_it_with_its_status(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    # A container that dies before its ttyd listens (a broken image, an out-of-memory kill).
    replace_container(docker_client, workspace, ["sleep", "2"])
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        code, reason = await term.wait_closed()
    # Found when the relay asks Docker between dials, not after ready_timeout's 60 s.
    assert (code, reason) == (
        CLOSE_INTERNAL_ERROR,
        "workspace container: The workspace container is exited, not running.",
    )


class TestWithoutTheEngine:
    @pytest.fixture
    def server_settings(self, engine: DockerSocketProxy) -> dict[str, Any]:
        return settings(ContainerManager={"docker_host": engine.url})

    async def test_the_terminal_closes_with_a_reason_and_works_once_it_is_back(
        self, api: Api, jp_ws_fetch: WsFetch, engine: DockerSocketProxy
    ) -> None:
        workspace = await api.create()
        engine.stop()
        async with terminal(jp_ws_fetch, workspace["id"]) as term:
            assert await term.wait_closed() == (CLOSE_INTERNAL_ERROR, ENGINE_DOWN_REASON)
        engine.start()
        async with terminal(jp_ws_fetch, workspace["id"]) as term:
            term.type("echo $((9*9))-engine-back\r")
            await term.read_until("81-engine-back")


async def test_an_invalid_handshake_is_refused(api: Api, jp_ws_fetch: WsFetch) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"], handshake=False) as term:
        term.ws.write_message(b"{not json", binary=True)
        assert (await term.wait_closed())[0] == CLOSE_INVALID_PAYLOAD


# First messages that are not ttyd's handshake {"AuthToken": string, "columns": int, "rows": int}.
BAD_FIRST_MESSAGES = {
    "nested too deeply to parse": b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    "a JSON array": b"[80, 24]",
    "a JSON string": b'"hello"',
    "input before the handshake": b"0echo hi\r",
    "too large": json.dumps({"AuthToken": "x" * 10_000, "columns": 80, "rows": 24}).encode(),
    "without a size": b'{"AuthToken": ""}',
    "a token that is no string": b'{"AuthToken": 1, "columns": 80, "rows": 24}',
}


async def test_a_first_message_that_is_not_the_handshake_closes_with_1007(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    workspace = await api.create()
    for what, message in BAD_FIRST_MESSAGES.items():
        for binary in (True, False):
            async with terminal(jp_ws_fetch, workspace["id"], handshake=False) as term:
                term.ws.write_message(message if binary else message.decode(), binary=binary)
                code, reason = await term.wait_closed()
                assert (code, bool(reason)) == (CLOSE_INVALID_PAYLOAD, True), (what, code, reason)
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((6*7))-still-works\r")
        await term.read_until("42-still-works")


async def test_server_shutdown_closes_terminals_and_leaves_containers(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient, relays: TerminalRelay
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((6+6))-before-shutdown\r")
        await term.read_until("12-before-shutdown")
        await relays.close_all()
        assert await term.wait_closed() == (CLOSE_GOING_AWAY, SHUTDOWN_REASON)
        assert not relays.open_relays()
    assert container_of(docker_client, workspace).status == "running"


# -- activity and keepalive ----------------------------------------------------------------


async def test_terminal_use_counts_as_activity(
    api: Api, jp_ws_fetch: WsFetch, jp_serverapp: Any
) -> None:
    workspace = await api.create()
    before = utcnow()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type("echo $((3*3))-active\r")
        await term.read_until("9-active")
    assert jp_serverapp.web_app.settings["api_last_activity"] > before
    assert jp_serverapp.web_app.last_activity() > before
    code, described = await api.call("GET", workspace["id"])
    assert code == 200
    assert described["last_used_at"] is not None


@pytest.mark.parametrize("server_settings", [settings(TerminalRelay={"ping_interval": 1})])
async def test_a_browser_that_stops_answering_pings_is_dropped(
    api: Api,
    jp_http_port: int,
    jp_base_url: str,
    jp_auth_header: dict[str, str],
    relays: TerminalRelay,
) -> None:
    workspace = await api.create()
    reader, writer = await asyncio.open_connection("127.0.0.1", jp_http_port)
    request = (
        f"GET {jp_base_url}api/ws/code/{workspace['id']} HTTP/1.1\r\n"
        f"Host: localhost:{jp_http_port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        "Sec-WebSocket-Protocol: tty\r\n"
        f"Authorization: {jp_auth_header['Authorization']}\r\n\r\n"
    )
    writer.write(request.encode())
    status = await asyncio.wait_for(reader.readline(), 30)
    assert status.startswith(b"HTTP/1.1 101")
    # Never answer a ping: the server must give up on this socket and close the ttyd leg too.
    await wait_for(lambda: relays.open_relays(), timeout=30)
    await asyncio.wait_for(reader.read(), 60)  # returns at end of stream
    await wait_for(lambda: not relays.open_relays(), timeout=30)
    writer.close()
    await writer.wait_closed()


# -- who may connect ---------------------------------------------------------------------


@pytest.mark.parametrize("server_settings", [MULTI_USER])
async def test_refused_before_the_upgrade_without_touching_containers(
    api: Api,
    service: Any,
    jp_ws_fetch: WsFetch,
    jp_http_port: int,
    jp_base_url: str,
    docker_client: docker.DockerClient,
) -> None:
    alice = api.as_user("alice")
    workspace = await alice.create()
    container = container_of(docker_client, workspace)
    await asyncio.to_thread(container.stop, timeout=1)
    workspace_id = workspace["id"]

    # No identity at all, and a wrong token.
    url = f"ws://localhost:{jp_http_port}{jp_base_url}api/ws/code/{workspace_id}"
    anonymous = websocket_connect(HTTPRequest(url), subprotocols=["tty"])
    assert await refusal(anonymous) == (401, "Authentication required")
    wrong_token = relay_fetch(jp_ws_fetch, workspace_id, Authorization="token not-the-token")
    assert (await refusal(wrong_token))[0] == 401
    # Someone else's workspace, and one that does not exist: the same answer.
    for user, target in (("bob", workspace_id), ("alice", "nosuchworkspace")):
        answer = await refusal(relay_fetch(jp_ws_fetch, target, **{USER_HEADER: user}))
        assert answer == (403, "No such workspace for this user")
    # The owner from another site's page, even with the server's token (a shell stays strict).
    for credential in ({USER_HEADER: "alice"}, {}):
        cross_site = {**credential, "Origin": "https://evil.example"}
        answer = await refusal(relay_fetch(jp_ws_fetch, workspace_id, **cross_site))
        assert answer == (403, "Cross-origin WebSocket refused")

    container.reload()
    assert container.status == "exited"
    label = f"{STORE_LABEL}={service.store.store_id}"
    assert docker_client.containers.list(all=True, filters={"label": label}) == [container]

    # The same-site owner gets in (and the relay starts the container).
    same_site = {USER_HEADER: "alice", "Origin": f"http://localhost:{jp_http_port}"}
    async with terminal(jp_ws_fetch, workspace["id"], headers=same_site) as term:
        term.type("echo $((7*6))-owner\r")
        await term.read_until("42-owner")


@pytest.mark.parametrize("server_settings", [MULTI_USER])
async def test_two_users_each_reach_only_their_own_workspace(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspaces = {user: await api.as_user(user).create(name=user) for user in ("alice", "bob")}
    for user, workspace in workspaces.items():
        hostname = container_of(docker_client, workspace).attrs["Config"]["Hostname"]
        async with terminal(jp_ws_fetch, workspace["id"], user=user) as term:
            term.type('echo "host=$(hostname)"\r')
            await term.read_until(f"host={hostname}")
    for user, other in (("alice", "bob"), ("bob", "alice")):
        theirs = relay_fetch(jp_ws_fetch, workspaces[other]["id"], **{USER_HEADER: user})
        assert (await refusal(theirs))[0] == 403
