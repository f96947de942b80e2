"""Issue 17: a user cannot fill the host's disk through the workspace volume or the container log.

Against the real engine: the volume is a loop-mounted image of ContainerManager.disk_limit (set
small here), the log is rotated at log_max_size. The tests run as root on the Docker host, in
dockerd's mount namespace, so they read the image files and mounts under TEST_DISK_DIR directly.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from jupyter_popebot_code.backends.docker.manager import DISK_SIZE_LABEL
from jupyter_popebot_code.core.store import volume_name

from .conftest import IMAGE, SIDECAR_PREFIX, TEST_DISK_DIR, Api, HeaderIdentityProvider, wait_for
from .server_process import AUTHJS_OPTIONS, ServerProcess, run_and_clean_up
from .terminal_client import WsFetch, terminal

MIB = 1024 * 1024


def settings(**container_manager: Any) -> dict[str, Any]:
    return {"ContainerManager": container_manager}


def image_of(workspace: dict[str, Any]) -> Path:
    return Path(TEST_DISK_DIR) / f"{volume_name(workspace['id'])}.img"


def mount_of(workspace: dict[str, Any]) -> Path:
    return Path(TEST_DISK_DIR) / volume_name(workspace["id"])


def loop_devices_of(image: Path) -> str:
    return subprocess.run(
        ["losetup", "-j", str(image)], capture_output=True, text=True, check=True
    ).stdout.strip()


def run_in(docker_client: docker.DockerClient, workspace: dict[str, Any], command: str) -> str:
    """Set-up and read-back only: the user's own view goes through the relay."""
    container = docker_client.containers.get(workspace["container_name"])
    result = container.exec_run(["sh", "-c", command], user="coder")
    return result.output.decode()  # type: ignore[no-any-return]


async def remove_behind_the_servers_back(
    api: Api, docker_client: docker.DockerClient, workspace: dict[str, Any]
) -> None:
    """Remove the container, then wait until the server has seen it go (its event stream)."""
    docker_client.containers.get(workspace["container_name"]).remove(force=True)

    async def gone() -> bool:
        listed = (await api.call("GET"))[1]["workspaces"]
        return any(
            ws["id"] == workspace["id"] and ws["container"]["status"] == "missing" for ws in listed
        )

    await wait_for(gone, timeout=10, interval=0.02)


async def df_kib(jp_ws_fetch: WsFetch, workspace_id: str, user: str | None = None) -> int:
    """Size in KiB of the workspace folder's file system, as `df` shows it in the terminal."""
    async with terminal(jp_ws_fetch, workspace_id, user=user) as term:
        term.type('echo "DF:$(df -k --output=size "$WORKSPACE_DIR" | tail -1 | tr -d " "):DF"\r')
        screen = await term.read_until(":DF\r")
    found = re.findall(r"DF:(\d+):DF", screen)
    assert found, screen
    return int(found[-1])


@pytest.mark.parametrize("server_settings", [settings(disk_limit="64m")])
async def test_the_volume_has_the_limit_and_a_write_past_it_fails(
    api: Api, jp_ws_fetch: WsFetch
) -> None:
    workspace = await api.create()
    size = await df_kib(jp_ws_fetch, workspace["id"])
    # ext4's own tables take a few MiB of the 64.
    assert 48 * 1024 <= size <= 64 * 1024
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        term.type('dd if=/dev/zero of="$WORKSPACE_DIR/big" bs=1M count=100; echo "rc=$?=rc"\r')
        screen = await term.read_until("=rc\r", timeout=120)
    assert "No space left on device" in screen
    assert "rc=1=rc" in screen
    # The host gives the workspace no more than its image's size.
    assert image_of(workspace).stat().st_blocks * 512 <= 64 * MIB


@pytest.fixture
def decoy_dockerds(docker_client: docker.DockerClient) -> Iterator[list[str]]:
    """Processes named dockerd in mount namespaces of their own, as Docker in Docker makes.

    With the host's PIDs in view, the disk helper must enter the namespace of the dockerd that
    runs it, not the first process called dockerd in /proc's order (what it did before; whether
    a decoy comes first depends on PIDs, so this holds the helper to the right one in any order).
    A helper that entered a decoy would have made the image inside it, not on the host.
    """
    decoys = [
        docker_client.containers.run(
            IMAGE,
            entrypoint=["sh", "-c", "cp /bin/sleep /tmp/dockerd && exec /tmp/dockerd 600"],
            name=f"{SIDECAR_PREFIX}decoy-dockerd-{index}",
            user="0",
            network_mode="none",
            detach=True,
        )
        for index in range(3)
    ]
    try:
        for decoy in decoys:
            wait_for_sync(lambda d=decoy: "dockerd" in d.top()["Processes"][0][-1])
        yield [decoy.name for decoy in decoys]
    finally:
        for decoy in decoys:
            decoy.remove(force=True)


def wait_for_sync(condition: Any, attempts: int = 100) -> None:
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("the decoy never started")


@pytest.mark.parametrize("server_settings", [settings(disk_limit="64m")])
async def test_the_helper_finds_its_own_dockerd_among_others(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient, decoy_dockerds: list[str]
) -> None:
    workspace = await api.create()
    assert image_of(workspace).is_file()
    assert os.path.ismount(mount_of(workspace))
    assert 48 * 1024 <= await df_kib(jp_ws_fetch, workspace["id"]) <= 64 * 1024
    for name in decoy_dockerds:
        decoy = docker_client.containers.get(name)
        found = decoy.exec_run(["sh", "-c", f"ls {TEST_DISK_DIR} 2>&1 || true"]).output
        assert b"No such file" in found, found


@pytest.mark.parametrize(
    "server_settings",
    [
        {
            **settings(disk_limit="64m", owner_disk_limit={"bob": "32m", "carol": "0"}),
            "ServerApp": {"identity_provider_class": HeaderIdentityProvider},
        }
    ],
)
async def test_an_owner_override_sets_that_owners_size(api: Api, jp_ws_fetch: WsFetch) -> None:
    bob = await api.as_user("bob").create()
    assert 24 * 1024 <= await df_kib(jp_ws_fetch, bob["id"], user="bob") <= 32 * 1024
    carol = await api.as_user("carol").create()
    assert not image_of(carol).exists()  # no limit for carol: a plain volume
    assert await df_kib(jp_ws_fetch, carol["id"], user="carol") > 1024 * 1024


@pytest.mark.parametrize("server_settings", [settings(disk_limit="64m")])
async def test_files_survive_stop_start_recreate_and_a_lost_mount(
    api: Api, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    path = workspace["id"]
    run_in(docker_client, workspace, 'echo kept > "$WORKSPACE_DIR/note"')

    assert (await api.call("POST", f"{path}/stop"))[0] == 200
    assert (await api.call("POST", f"{path}/ensure"))[1]["status"] == "started"
    assert run_in(docker_client, workspace, 'cat "$WORKSPACE_DIR/note"') == "kept\n"

    await remove_behind_the_servers_back(api, docker_client, workspace)
    assert (await api.call("POST", f"{path}/ensure"))[1]["status"] == "created"
    assert run_in(docker_client, workspace, 'cat "$WORKSPACE_DIR/note"') == "kept\n"

    # As after a reboot: the mount is gone. The bare mount point refuses the user's files...
    assert (await api.call("POST", f"{path}/stop"))[0] == 200
    subprocess.run(["umount", str(mount_of(workspace))], check=True)
    # The kernel frees the (autoclear) loop device a moment after the unmount.
    await wait_for(lambda: not loop_devices_of(image_of(workspace)), timeout=30)
    with pytest.raises(PermissionError):
        (mount_of(workspace) / "stray").write_text("x")
    # ...and the next start mounts the image again.
    assert (await api.call("POST", f"{path}/ensure"))[1]["status"] == "started"
    assert os.path.ismount(mount_of(workspace))
    assert run_in(docker_client, workspace, 'cat "$WORKSPACE_DIR/note"') == "kept\n"


@pytest.mark.parametrize("server_settings", [settings(disk_limit="64m")])
async def test_delete_removes_the_image_and_its_mount(api: Api) -> None:
    workspace = await api.create()
    image = image_of(workspace)
    assert image.exists()
    assert os.path.ismount(mount_of(workspace))
    assert loop_devices_of(image)
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    assert not image.exists()
    assert not mount_of(workspace).exists()
    assert (
        str(image)
        not in subprocess.run(["losetup", "-a"], capture_output=True, text=True, check=True).stdout
    )


@pytest.mark.parametrize(
    "server_settings", [settings(disk_limit="64m", keep_volume_on_delete=True)]
)
async def test_a_kept_volume_keeps_its_image_unmounted(api: Api) -> None:
    workspace = await api.create()
    assert (await api.call("DELETE", workspace["id"]))[0] == 204
    assert image_of(workspace).exists()
    assert not os.path.ismount(mount_of(workspace))
    assert not loop_devices_of(image_of(workspace))


@pytest.mark.parametrize("server_settings", [settings(disk_limit="lots")])
async def test_an_invalid_limit_is_a_clear_error(api: Api) -> None:
    code, reply = await api.call("POST", body={"name": "x", "repo": "", "branch": ""})
    assert code == 500
    assert "Invalid disk limit 'lots'" in reply["message"]
    assert (await api.call("GET"))[1] == {"workspaces": []}


@pytest.mark.parametrize(
    "server_settings", [settings(disk_limit="64m", disk_dir="/proc/popebot-not-a-folder")]
)
async def test_a_disk_that_cannot_be_made_is_a_clear_error_not_an_unlimited_volume(
    api: Api, docker_client: docker.DockerClient
) -> None:
    code, reply = await api.call("POST", body={"name": "x", "repo": "", "branch": ""})
    assert code == 500
    assert reply["message"].startswith("The disk helper failed")
    assert "/proc/popebot-not-a-folder" in reply["message"]
    assert (await api.call("GET"))[1] == {"workspaces": []}


@pytest.mark.parametrize("server_settings", [settings(log_max_size="1m", log_max_files=2)])
async def test_a_log_flood_stays_under_the_cap(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    workspace = await api.create()
    async with terminal(jp_ws_fetch, workspace["id"]) as term:
        # 20 MB of lines into the container's log.
        term.type(
            "yes 0123456789012345678901234567890123456789012345678901234567890123456789 "
            '| head -c 20000000 > /proc/1/fd/1; echo "flood=$?=done"\r'
        )
        await term.read_until("=done\r", timeout=120)
    log_path = Path(docker_client.api.inspect_container(workspace["container_name"])["LogPath"])
    files = list(log_path.parent.glob(log_path.name + "*"))
    assert files
    # json-file rotates once a file passes max-size: each holds at most one line more.
    assert all(f.stat().st_size <= 1 * MIB + 4096 for f in files), files
    assert sum(f.stat().st_size for f in files) <= 2 * MIB + 8192


@pytest.fixture
def server(
    tmp_path: Path, workspace_image: str, docker_client: docker.DockerClient
) -> Iterator[ServerProcess]:
    """A real `jupyter server` process with the package's defaults, not yet started."""
    yield from run_and_clean_up(ServerProcess(tmp_path, workspace_image), docker_client)


@pytest.mark.parametrize(
    ("options", "logged", "size"),
    [
        pytest.param(
            AUTHJS_OPTIONS,
            "Workspace disks: 10g each, enforced by the kernel (the default on a multi-user "
            "server)",
            10 * 1024 * MIB,
            id="multi-user",
        ),
        pytest.param(
            [],
            "Workspace disks are not limited (the default on a single-user server)",
            None,
            id="single-user",
        ),
    ],
)
def test_a_multi_user_server_limits_disks_by_default(
    server: ServerProcess,
    docker_client: docker.DockerClient,
    options: list[str],
    logged: str,
    size: int | None,
) -> None:
    server.extra_args = options
    server.start()
    assert logged in server.log_path.read_text()
    created = server.request("POST", "api/code/workspaces", json={"name": "disk default"})
    assert created.status_code == 201, created.text
    workspace = created.json()
    labels = docker_client.api.inspect_volume(volume_name(workspace["id"]))["Labels"]
    assert labels.get(DISK_SIZE_LABEL) == (None if size is None else str(size))
    if size is not None:
        assert image_of(workspace).stat().st_size == size
        assert os.path.ismount(mount_of(workspace))


@pytest.mark.parametrize(
    "server_settings",
    [pytest.param({}, id="plain-volume"), pytest.param(settings(disk_limit="64m"), id="disk")],
)
async def test_the_home_folder_lasts_like_the_files(
    api: Api, jp_ws_fetch: WsFetch, docker_client: docker.DockerClient
) -> None:
    """Dotfiles (git's identity, shell history) survive a stop and a recreate: the volume holds
    the whole home folder, with the workspace folder inside it."""
    workspace = await api.create()
    path = workspace["id"]
    async with terminal(jp_ws_fetch, path) as term:
        term.type('git config --global user.name "Ada L" && echo set-$((1+1))\r')
        await term.read_until("set-2")
    assert (await api.call("POST", f"{path}/stop"))[0] == 200
    assert (await api.call("POST", f"{path}/ensure"))[1]["status"] == "started"
    assert run_in(docker_client, workspace, "git config --global user.name") == "Ada L\n"
    await remove_behind_the_servers_back(api, docker_client, workspace)
    assert (await api.call("POST", f"{path}/ensure"))[1]["status"] == "created"
    async with terminal(jp_ws_fetch, path) as term:
        term.type('echo "name=$(git config --global user.name)=$(pwd)="\r')
        screen = await term.read_until("/workspace=")
    assert "name=Ada L=/home/coder/workspace=" in screen, screen
    # The skeleton dotfiles are there, in the user's own home folder.
    assert run_in(docker_client, workspace, "stat -c %U ~ ~/.bashrc ~/workspace") == (
        "coder\ncoder\ncoder\n"
    )
