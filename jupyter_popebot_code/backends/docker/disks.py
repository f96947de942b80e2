"""Per-workspace disk limits: a loop-mounted ext4 image file behind each workspace volume.

The host kernel may lack quota support (no project quotas, no `--storage-opt size=`), but loop
devices work everywhere: each limited workspace gets a sparse ext4 image file of its size under
ContainerManager.disk_dir, loop-mounted on a folder next to it, and its Docker volume is a `local`
volume bound to that folder. The kernel enforces the size (ENOSPC for that workspace alone) and `df`
in the workspace shows it.

Mounting needs root in dockerd's mount namespace. The server only has the Docker socket (which is
root-equivalent), so a short-lived helper container with a few capabilities (`--pid=host`) enters
dockerd's mount namespace with nsenter and runs the host's own mkfs.ext4, mount and chattr there.

Mounts vanish on reboot: the mount is re-established before every start, and the empty mount point
is immutable (`chattr +i`) so a container started without it gets a read-only empty folder, never
the user's files on the host's disk.
"""

from __future__ import annotations

import docker
import docker.errors
from docker.models.containers import Container

from ...errors import ContainerError

# The workspace image's user (coder), who must own the new file system's root.
WORKSPACE_UID = 1000
# ext4 needs room for its journal and tables: smaller images fail mkfs or hold nothing.
MIN_DISK_BYTES = 16 * 1024 * 1024
# Seconds a helper may take (mkfs of a sparse image is quick; a busy host is slow).
HELPER_TIMEOUT = 120
HELPER_LABEL = "org.jupyter.popebot-code.disk-helper"

# Runs in the helper with the host's PIDs visible: enter the mount namespace of the dockerd that
# runs this helper, where Docker resolves volume binds, then run the script given as $0. The host
# may run other dockerds (Docker in Docker, a swarm node, rootless): the right one is the one
# whose root ($DOCKER_ROOT) holds this container's folder. PID 1's namespace when none is found.
_ENTER = (
    'self="$(cat /etc/hostname)"; p=1; '
    "for d in /proc/[0-9]*; do "
    '[ "$(cat "$d/comm" 2>/dev/null)" = dockerd ] || continue; '
    'for c in "$d/root$DOCKER_ROOT/containers/$self"*; do [ -d "$c" ] && p="${d#/proc/}"; done; '
    '[ "$p" = 1 ] || break; '
    "done; "
    'exec nsenter -t "$p" -m -- sh -c "$0" disk "$@"'
)

# $1 folder, $2 name, $3 size in bytes. Idempotent: an existing mount or image is kept.
MOUNT_SCRIPT = f"""set -eu
img="$1/$2.img"; mnt="$1/$2"
mkdir -p "$1"
[ -d "$mnt" ] || mkdir "$mnt"
if mountpoint -q "$mnt"; then exit 0; fi
# Unmounted, the folder refuses writes: files never land on the host's disk unbounded.
chattr +i "$mnt"
fresh=0
if [ ! -e "$img" ]; then
  rm -f "$img.new"
  truncate -s "$3" "$img.new"
  mkfs.ext4 -q -F -m 0 -E root_owner={WORKSPACE_UID}:{WORKSPACE_UID} "$img.new"
  mv "$img.new" "$img"
  fresh=1
fi
mount -o loop,nodev,nosuid "$img" "$mnt"
# The first-start clone wants an empty folder.
if [ "$fresh" = 1 ]; then rmdir "$mnt/lost+found" 2>/dev/null || true; fi
"""

# $1 folder, $2 name, $3 1 to remove the image and mount point; leaves no loop device behind.
UNMOUNT_SCRIPT = """set -eu
img="$1/$2.img"; mnt="$1/$2"
if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
# The kernel frees an autoclear loop device a moment after the unmount: wait, then detach any left.
n=0
while [ -n "$(losetup -j "$img" 2>/dev/null)" ] && [ "$n" -lt 50 ]; do sleep 0.1; n=$((n+1)); done
for dev in $(losetup -j "$img" 2>/dev/null | cut -d: -f1); do losetup -d "$dev" || true; done
if [ "$3" = 1 ]; then
  if [ -d "$mnt" ]; then chattr -i "$mnt"; rmdir "$mnt"; fi
  rm -f "$img" "$img.new"
fi
"""


def parse_size(limit: str) -> int:
    """Bytes of a limit in Docker's notation ('10g'); 0 for '' or '0' (no limit)."""
    if limit.strip() in ("", "0"):
        return 0
    try:
        size = int(docker.utils.parse_bytes(limit.strip()))
    except docker.errors.DockerException as err:
        raise ContainerError(
            f"Invalid disk limit {limit!r}: give a size like '10g' (ContainerManager.disk_limit)."
        ) from err
    if size < MIN_DISK_BYTES:
        raise ContainerError(f"Disk limit {limit!r} is below the smallest possible (16m).")
    return size


def mount_point(disk_dir: str, volume_name: str) -> str:
    return f"{disk_dir.rstrip('/')}/{volume_name}"


def run_helper(client: docker.DockerClient, image: str, script: str, *args: str) -> None:
    """Run `script` with `args` as root in dockerd's mount namespace; raise with its stderr."""
    try:
        container = _create_helper(client, image, script, args)
    except docker.errors.ImageNotFound as err:
        raise ContainerError(
            f"The disk helper's image {image!r} is not on the Docker engine "
            "(ContainerManager.disk_helper_image)."
        ) from err
    try:
        try:
            container.start()
        except docker.errors.APIError as err:
            raise ContainerError(
                "The disk helper could not start (ContainerManager.disk_limit needs an engine "
                f"that grants SYS_ADMIN to a container): {err.explanation or err}"
            ) from err
        result = container.wait(timeout=HELPER_TIMEOUT)
        if result.get("StatusCode") != 0:
            output = container.logs(stdout=True, stderr=True).decode("utf-8", "replace")
            raise ContainerError(
                "The disk helper failed (ContainerManager.disk_limit needs an engine that grants "
                "SYS_ADMIN to a container, and mkfs.ext4 and loop devices on its host): "
                f"{output.strip()[-500:]}"
            )
    finally:
        container.remove(force=True)


def _create_helper(
    client: docker.DockerClient, image: str, script: str, args: tuple[str, ...]
) -> Container:
    return client.containers.create(
        image,
        entrypoint=["sh", "-c", _ENTER, script, *args],
        environment={"DOCKER_ROOT": _docker_root(client)},
        user="0",
        # Not --privileged: some engines may not grant every capability (e.g. no SYS_RESOURCE).
        # nsenter needs SYS_ADMIN, SYS_CHROOT and SYS_PTRACE; chattr LINUX_IMMUTABLE; mount the
        # loop devices (block major 7) and /dev/loop-control (char 10:237).
        cap_add=["SYS_ADMIN", "SYS_CHROOT", "SYS_PTRACE", "LINUX_IMMUTABLE"],
        device_cgroup_rules=["b 7:* rwm", "c 10:237 rwm"],
        pid_mode="host",
        network_mode="none",
        labels={HELPER_LABEL: "1"},
        detach=True,
    )


_docker_roots: dict[str, str] = {}


def _docker_root(client: docker.DockerClient) -> str:
    """The engine's data folder (DockerRootDir), asked once per engine."""
    url = client.api.base_url
    if url not in _docker_roots:
        _docker_roots[url] = client.info()["DockerRootDir"]
    return _docker_roots[url]


def mount(
    client: docker.DockerClient, image: str, disk_dir: str, volume_name: str, size: int
) -> None:
    """Make (once) and mount the volume's image file; a mounted one is left as it is."""
    run_helper(client, image, MOUNT_SCRIPT, disk_dir.rstrip("/"), volume_name, str(size))


def release(
    client: docker.DockerClient, image: str, disk_dir: str, volume_name: str, remove: bool
) -> None:
    """Unmount the volume's image (freeing its loop device); with `remove`, delete it too."""
    run_helper(
        client, image, UNMOUNT_SCRIPT, disk_dir.rstrip("/"), volume_name, "1" if remove else "0"
    )
