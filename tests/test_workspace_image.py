"""The real workspace image on its own: ttyd auth, session reattach, uid 1000, first-start clone."""

from __future__ import annotations

import base64
import codecs
import contextlib
import json
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import docker
import pytest
from docker.models.containers import Container
from docker.models.networks import Network
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from jupyter_popebot_code.backends.docker.manager import ContainerManager

from .conftest import IMAGE_TEST_NETWORK, GitServer, serve_git_repository

# Everything these tests create carries this prefix (per checkout, like the test network), so
# cleanup can never touch anything else.
NETWORK = IMAGE_TEST_NETWORK
PREFIX = f"{NETWORK}-"
TEST_LABEL = "org.jupyter.popebot-code.test"
TTYD_PORT = 7681
WORKSPACE_DIR = "/home/coder/workspace"
BRANCH = "feature/image-test"
FEATURE_TEXT = "written on the feature branch"
# CSI / OSC / charset / single-character escape sequences, removed before matching output.
ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|.)")

# The first test may build the image (minutes on a fresh machine); each wait below is bounded.
pytestmark = pytest.mark.timeout(1800)


# --- fixtures -----------------------------------------------------------------------------------


def _remove_leftovers(client: docker.DockerClient) -> None:
    """Remove this module's containers, volumes and network (also those of a crashed run)."""
    for container in client.containers.list(all=True, filters={"name": PREFIX}):
        if container.name.startswith(PREFIX):
            container.remove(force=True)
    for volume in client.volumes.list(filters={"name": PREFIX}):
        if volume.name.startswith(PREFIX):
            volume.remove(force=True)
    for network in client.networks.list(names=[NETWORK]):
        if network.name == NETWORK:
            network.remove()


@pytest.fixture(scope="session")
def image_network(docker_client: docker.DockerClient) -> Iterator[Network]:
    """An internal bridge network like the suite's, for this module only: no route out."""
    _remove_leftovers(docker_client)
    network = docker_client.networks.create(
        NETWORK, driver="bridge", internal=True, labels={TEST_LABEL: "image"}
    )
    network.reload()
    yield network
    _remove_leftovers(docker_client)


@dataclass
class Workspace:
    """A running workspace container and the credential its ttyd was started with."""

    container: Container
    credential: str | None
    volume: str | None = None

    @property
    def ip(self) -> str:
        self.container.reload()
        return self.container.attrs["NetworkSettings"]["Networks"][NETWORK]["IPAddress"]

    def wait_listening(self, timeout: float = 30) -> str:
        """Wait until ttyd accepts TCP connections; return the container's address."""
        deadline = time.monotonic() + timeout
        while True:
            self.container.reload()
            if self.container.status == "running":
                address = self.ip
                try:
                    socket.create_connection((address, TTYD_PORT), timeout=1).close()
                    return address
                except OSError:
                    pass
            elif self.container.status in ("exited", "dead"):
                logs = self.container.logs().decode(errors="replace")
                pytest.fail(f"container stopped before ttyd listened:\n{logs}")
            if time.monotonic() > deadline:
                pytest.fail(f"ttyd did not listen on {TTYD_PORT} within {timeout} s")
            time.sleep(0.1)

    def exec(self, *command: str) -> str:
        """Run a command in the container as its user; fail on a non-zero exit."""
        code, output = self.container.exec_run(list(command), user="coder")
        text = output.decode(errors="replace")
        assert code == 0, f"{command} exited {code}: {text}"
        return text

    def wait_clone_status(self, timeout: float = 60) -> str:
        """The outcome recorded by the image's clone job (ok, present, failed N, ...)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            code, output = self.container.exec_run(
                ["cat", "/tmp/workspace-clone/status"], user="coder"
            )
            if code == 0:
                return output.decode().strip()
            time.sleep(0.2)
        pytest.fail(f"the clone job recorded no outcome within {timeout} s")


@pytest.fixture
def run_workspace(
    docker_client: docker.DockerClient, workspace_image: str, image_network: Network
) -> Iterator[Callable[..., Workspace]]:
    """Start workspace containers the way the server does (init, env, named volume, read-only
    root file system with tmpfs, capabilities)."""
    started: list[Workspace] = []

    def run(
        env: dict[str, str] | None = None,
        *,
        credential: str | None = "coder:test-secret",
        volume: bool = False,
    ) -> Workspace:
        name = f"{PREFIX}{uuid.uuid4().hex[:12]}"
        environment = dict(env or {})
        if credential is not None:
            environment["TTYD_CREDENTIAL"] = credential
        container = docker_client.containers.run(
            workspace_image,
            name=name,
            detach=True,
            init=True,
            environment=environment,
            network=image_network.name,
            labels={TEST_LABEL: "image"},
            volumes={name: {"bind": WORKSPACE_DIR, "mode": "rw"}} if volume else None,
            security_opt=["no-new-privileges:true"],
            **ContainerManager().confinement_options(),
        )
        workspace = Workspace(container, credential, name if volume else None)
        started.append(workspace)
        return workspace

    yield run
    for workspace in started:
        workspace.container.remove(force=True)
        if workspace.volume:
            docker_client.volumes.get(workspace.volume).remove(force=True)


@pytest.fixture(scope="module")
def git_daemon(
    image_network: Network, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GitServer]:
    """Serve a repository with a main and a non-default branch over git:// to the containers."""
    gateway = image_network.attrs["IPAM"]["Config"][0]["Gateway"]
    with serve_git_repository(tmp_path_factory.mktemp("git"), gateway, BRANCH, FEATURE_TEXT) as git:
        yield git


# --- a ttyd client speaking the browser's protocol ---------------------------------------------


def _basic(credential: str) -> str:
    return base64.b64encode(credential.encode()).decode()


@dataclass
class Terminal:
    """One ttyd WebSocket session; collects the PTY output as text."""

    ws: ClientConnection
    output: str = ""
    decoder: codecs.IncrementalDecoder = field(
        default_factory=lambda: codecs.getincrementaldecoder("utf-8")("replace")
    )

    @property
    def text(self) -> str:
        """The output without escape sequences and carriage returns."""
        return ANSI.sub("", self.output).replace("\r", "")

    def send_input(self, keys: str) -> None:
        self.ws.send(b"0" + keys.encode())

    def read_until(self, needle: str, timeout: float = 30) -> str:
        """Read output until `needle` shows up (escape sequences removed); fail after `timeout`."""
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pytest.fail(f"{needle!r} not seen within {timeout} s; output:\n{self.text[-3000:]}")
            try:
                frame = self.ws.recv(timeout=remaining)
            except TimeoutError:
                continue
            except ConnectionClosed as closed:
                pytest.fail(f"ttyd closed the terminal ({closed}); output:\n{self.text[-3000:]}")
            data = frame if isinstance(frame, bytes) else frame.encode()
            if data[:1] == b"0":
                self.output += self.decoder.decode(data[1:])
        return self.text

    def wait_for_prompt(self, timeout: float = 30) -> None:
        self.read_until("coder@", timeout)


@contextlib.contextmanager
def _terminal_socket(
    address: str, *, header_credential: str | None, token_credential: str | None
) -> Iterator[ClientConnection]:
    """Open ttyd's WebSocket (Basic auth header if given) and send the JSON handshake."""
    headers = {"Authorization": f"Basic {_basic(header_credential)}"} if header_credential else None
    with connect(
        f"ws://{address}:{TTYD_PORT}/ws",
        subprotocols=["tty"],
        additional_headers=headers,
        open_timeout=10,
        close_timeout=5,
    ) as ws:
        # Wide enough that no message the tests look for wraps.
        handshake: dict[str, object] = {"columns": 200, "rows": 50}
        if token_credential is not None:
            handshake["AuthToken"] = _basic(token_credential)
        ws.send(json.dumps(handshake))
        yield ws


@pytest.fixture
def open_terminal() -> Iterator[Callable[[Workspace], Terminal]]:
    """Open authenticated terminals on a workspace; all are closed at the end."""
    with contextlib.ExitStack() as sockets:

        def open_(workspace: Workspace) -> Terminal:
            address = workspace.wait_listening()
            ws = sockets.enter_context(
                _terminal_socket(
                    address,
                    header_credential=workspace.credential,
                    token_credential=workspace.credential,
                )
            )
            return Terminal(ws)

        yield open_


# --- tests --------------------------------------------------------------------------------------


def test_refuses_to_start_without_credential(run_workspace: Callable[..., Workspace]) -> None:
    workspace = run_workspace(credential=None)
    result = workspace.container.wait(timeout=60)
    logs = workspace.container.logs().decode()
    assert result["StatusCode"] == 64
    assert "refusing to start an unauthenticated terminal" in logs


@pytest.mark.parametrize("header_credential", [None, "coder:wrong-secret"])
def test_ttyd_refuses_upgrade_without_right_basic_auth(
    run_workspace: Callable[..., Workspace], header_credential: str | None
) -> None:
    workspace = run_workspace()
    address = workspace.wait_listening()
    with (
        pytest.raises(InvalidHandshake),
        _terminal_socket(
            address, header_credential=header_credential, token_credential=workspace.credential
        ),
    ):
        pass


def _read_until_closed(ws: ClientConnection, timeout: float = 30) -> tuple[bytes, ConnectionClosed]:
    """Collect PTY output until ttyd closes the socket; fail if it stays open past `timeout`."""
    output = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = ws.recv(timeout=deadline - time.monotonic())
        except TimeoutError:
            break
        except ConnectionClosed as closed:
            return output, closed
        if isinstance(frame, bytes) and frame[:1] == b"0":
            output += frame[1:]
    pytest.fail(f"ttyd kept the socket open for {timeout} s; output: {output[-500:]!r}")


def test_ttyd_closes_on_wrong_auth_token(run_workspace: Callable[..., Workspace]) -> None:
    workspace = run_workspace()
    address = workspace.wait_listening()
    with _terminal_socket(
        address, header_credential=workspace.credential, token_credential="coder:wrong-secret"
    ) as ws:
        output, closed = _read_until_closed(ws)
    assert closed.rcvd is not None
    assert closed.rcvd.code == 1008  # policy violation
    assert output == b""


def test_terminal_echo_unicode_and_unprivileged_user(
    run_workspace: Callable[..., Workspace], open_terminal: Callable[[Workspace], Terminal]
) -> None:
    workspace = run_workspace()
    terminal = open_terminal(workspace)
    terminal.wait_for_prompt()
    # The typed line holds $((6*7)) and $(id -u); only the shell's output holds their values.
    terminal.send_input(
        "echo \"sum-$((6*7)) uid-$(id -u)\"; printf '\\303\\251t\\303\\251-%s\\n' ok\r"
    )
    text = terminal.read_until("été-ok")
    assert "sum-42 uid-1000" in text
    # Every process of the container, as the engine sees it from the host: only docker-init and
    # ttyd (which holds the credential) run as root, everything of the terminal as the user.
    processes = workspace.container.top(ps_args="-o pid,uid,comm")["Processes"]
    by_command = {row[2]: row[1] for row in processes}
    assert {by_command["docker-init"], by_command["ttyd"]} == {"0"}, processes
    users = {row[1] for row in processes if row[2] not in ("docker-init", "ttyd")}
    assert users == {"1000"}, processes
    # The session keeper (the kernel cuts a command's name to 15 characters).
    assert "workspace-sessi" in by_command, processes


def test_reconnect_reattaches_the_session(
    run_workspace: Callable[..., Workspace], open_terminal: Callable[[Workspace], Terminal]
) -> None:
    workspace = run_workspace()
    first = open_terminal(workspace)
    first.wait_for_prompt()
    first.send_input("KEPT=kept-$((6*7)); echo shell-$$-pid before-$((6*7))\r")
    shell = re.findall(r"shell-(\d+)-pid", first.read_until("before-42"))
    first.ws.close()

    second = open_terminal(workspace)
    # The session replays its recent output on attach: the earlier output is there untyped.
    second.read_until("before-42")
    second.send_input('echo "again-$KEPT"\r')
    second.read_until("again-kept-42")
    # One session, and its program is the shell of the first connection.
    status = workspace.exec("workspace-session", "status")
    assert shell, first.text
    assert f"pid {shell[0]}\n" in status, status


def test_a_reconnect_after_much_output_replays_its_end_in_the_modes_in_force(
    run_workspace: Callable[..., Workspace], open_terminal: Callable[[Workspace], Terminal]
) -> None:
    workspace = run_workspace()
    first = open_terminal(workspace)
    first.wait_for_prompt()
    # Alternate screen and bracketed paste on, then more output than the session keeps (1 MiB):
    # the sequences that set those modes are no longer among the bytes it replays.
    first.send_input("printf '\\033[?1049h\\033[?2004h'; seq 1 300000; echo end-$((6*7))\r")
    first.read_until("end-42", timeout=120)
    first.ws.close()

    second = open_terminal(workspace)
    second.read_until("end-42", timeout=60)
    replay = second.output
    # The modes come first, then whole lines: the first replayed line is a complete number,
    # and every line up to the last follows the one before it.
    assert replay.startswith("\x1b[?1049h"), replay[:100]
    assert "\x1b[?2004h" in replay[:100], replay[:100]
    numbers = [line for line in second.text.split("\n") if line.isdigit()]
    assert numbers[-1] == "300000"
    first_number = int(numbers[0])
    assert numbers == [str(n) for n in range(first_number, 300001)]
    assert 100_000 < first_number < 300_000  # about 1 MiB of 7-byte lines, not everything
    # The shell is the same and takes input.
    second.send_input("echo again-$((6*7))\r")
    second.read_until("again-42")


def test_first_start_clones_the_branch_and_a_restart_keeps_it(
    run_workspace: Callable[..., Workspace],
    open_terminal: Callable[[Workspace], Terminal],
    git_daemon: GitServer,
) -> None:
    workspace = run_workspace(
        {"REPO_URL": git_daemon.url, "BRANCH": BRANCH, "GIT_ALLOW_PROTOCOL": "git"},
        volume=True,
    )
    terminal = open_terminal(workspace)
    terminal.read_until(f"into {WORKSPACE_DIR}.", timeout=60)
    assert "Cloned" in terminal.text
    terminal.wait_for_prompt()
    terminal.send_input("git rev-parse --abbrev-ref HEAD; cat FEATURE.txt; touch kept.txt\r")
    text = terminal.read_until(FEATURE_TEXT)
    assert f"\n{BRANCH}\n" in text
    assert workspace.wait_clone_status() == "ok"

    # A restart must not clone again: the volume already holds the clone (and the user's file).
    workspace.container.restart(timeout=10)
    workspace.wait_listening()
    assert workspace.wait_clone_status() == "present"
    assert workspace.exec(
        "git", "-C", WORKSPACE_DIR, "rev-parse", "--abbrev-ref", "HEAD"
    ).strip() == (BRANCH)
    assert "kept.txt" in workspace.exec("ls", WORKSPACE_DIR).split()
    after_restart = open_terminal(workspace)
    after_restart.wait_for_prompt()
    after_restart.send_input("echo restarted-$((6*7))\r")
    after_restart.read_until("restarted-42")
    assert "Cloned" not in after_restart.text


@pytest.mark.parametrize(
    ("repo_path", "allowed_protocols", "git_says"),
    [
        ("/missing.git", "git", "fatal:"),
        ("/repo.git", "https", "transport 'git' not allowed"),
    ],
    ids=["unknown-repository", "protocol-not-allowed"],
)
def test_failed_clone_still_opens_a_working_shell(
    run_workspace: Callable[..., Workspace],
    open_terminal: Callable[[Workspace], Terminal],
    git_daemon: GitServer,
    repo_path: str,
    allowed_protocols: str,
    git_says: str,
) -> None:
    repo_url = git_daemon.base_url + repo_path
    workspace = run_workspace(
        {"REPO_URL": repo_url, "BRANCH": "", "GIT_ALLOW_PROTOCOL": allowed_protocols}, volume=True
    )
    terminal = open_terminal(workspace)
    text = terminal.read_until(f"The clone of {repo_url} failed", timeout=60)
    assert git_says in text
    terminal.wait_for_prompt()
    terminal.send_input("echo works-$((6*7))\r")
    terminal.read_until("works-42")
    assert workspace.wait_clone_status().startswith("failed")
    assert workspace.exec("ls", "-A", WORKSPACE_DIR).strip() == ""


def test_non_empty_folder_without_clone_is_left_alone(
    run_workspace: Callable[..., Workspace],
    open_terminal: Callable[[Workspace], Terminal],
    git_daemon: GitServer,
) -> None:
    workspace = run_workspace(
        {
            "REPO_URL": git_daemon.url,
            "GIT_ALLOW_PROTOCOL": "git",
            "WORKSPACE_DIR": "/home/coder",
        }
    )
    terminal = open_terminal(workspace)
    terminal.read_until("already has files but no git clone")
    terminal.wait_for_prompt()
    assert workspace.wait_clone_status() == "not-empty"
    assert ".git" not in workspace.exec("ls", "-A", "/home/coder").split()


@pytest.fixture
def silent_git_server(image_network: Network) -> Iterator[str]:
    """A git:// URL whose server accepts the connection and never answers (a hanging clone)."""
    gateway = image_network.attrs["IPAM"]["Config"][0]["Gateway"]
    with socket.socket() as server:
        server.bind((gateway, 0))
        server.listen(8)  # the kernel completes connections; nobody ever reads or answers
        yield f"git://{gateway}:{server.getsockname()[1]}/hangs.git"


def test_waiting_for_a_slow_clone_can_be_interrupted(
    run_workspace: Callable[..., Workspace],
    open_terminal: Callable[[Workspace], Terminal],
    silent_git_server: str,
) -> None:
    workspace = run_workspace({"REPO_URL": silent_git_server, "GIT_ALLOW_PROTOCOL": "git"})
    terminal = open_terminal(workspace)
    terminal.read_until("Ctrl-C stops waiting")
    terminal.read_until(f"Cloning {silent_git_server}")
    terminal.send_input("\x03")
    terminal.read_until("The clone is still running in the background")
    terminal.wait_for_prompt()
    terminal.send_input("echo works-$((6*7))\r")
    terminal.read_until("works-42")


def test_shell_knows_its_user(
    run_workspace: Callable[..., Workspace], open_terminal: Callable[[Workspace], Terminal]
) -> None:
    """USER and LOGNAME are set (tools like ssh, git and npm read them), also in `docker exec`."""
    workspace = run_workspace()
    terminal = open_terminal(workspace)
    terminal.wait_for_prompt()
    terminal.send_input('echo "user-[$USER] logname-[$LOGNAME] end-$((6*7))"\r')
    assert "user-[coder] logname-[coder] end-42" in terminal.read_until("end-42")
    assert workspace.exec("bash", "-c", 'echo "$USER $LOGNAME"').split() == ["coder", "coder"]


# Shell code in a repository URL and a branch name (both valid for git); neither may run when the
# user pastes the retry command the terminal suggests. Each payload would create its marker file.
CRAFTED_PATH = (
    "/x';touch${IFS}/tmp/pwned-quote;'$(touch${IFS}/tmp/pwned-sub)`touch${IFS}/tmp/pwned-tick`.git"
)
CRAFTED_BRANCH = "b;touch${IFS}/tmp/pwned-branch"


def test_failed_clone_hint_quotes_the_repository_and_branch(
    run_workspace: Callable[..., Workspace],
    open_terminal: Callable[[Workspace], Terminal],
    git_daemon: GitServer,
) -> None:
    repo_url = git_daemon.base_url + CRAFTED_PATH
    workspace = run_workspace(
        {"REPO_URL": repo_url, "BRANCH": CRAFTED_BRANCH, "GIT_ALLOW_PROTOCOL": "git"}
    )
    terminal = open_terminal(workspace)
    terminal.read_until("retry with: ", timeout=60)
    terminal.wait_for_prompt()  # printed after the whole hint
    # The output as the session keeps it (what a reconnect replays), colours and titles left out.
    screen = ANSI.sub("", workspace.exec("workspace-session", "dump"))
    lines = screen.splitlines()
    message = next(line for line in lines if line.startswith("The clone of "))
    assert "$(touch${IFS}" not in message, message
    assert "';touch" not in message, message
    command = next(line for line in lines if "retry with: " in line).split("retry with: ", 1)[1]
    assert workspace.wait_clone_status().startswith("failed")
    # What the user would paste, run by bash with `git` replaced by a function that lists its
    # arguments: exactly the branch and the URL, each one word, and no payload ran.
    script = f"git() {{ printf '<%s>\\n' \"$@\"; }}\n{command.rstrip()}\n"
    assert workspace.exec("bash", "-n", "-c", script) == ""
    _, output = workspace.container.exec_run(["bash", "-c", script])
    words = output.decode(errors="replace").splitlines()
    assert words == ["<clone>", "<--branch>", f"<{CRAFTED_BRANCH}>", "<-->", f"<{repo_url}>", "<.>"]
    assert [name for name in workspace.exec("ls", "-A", "/tmp").split() if "pwned" in name] == []
