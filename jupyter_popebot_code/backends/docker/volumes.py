"""Workspace volumes on one Docker engine, and the disk images behind those with a disk limit.

A volume without a limit is a plain local volume. One with a limit is a local volume bound to the
mount point of its own ext4 image (`disks`), labelled with the image's folder and size; the image
is mounted again before every start, since a reboot unmounts it. Everything here runs on the
Docker thread pool (the backend's `DockerEngine._call`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import docker
import docker.errors

from ...core.store import Workspace
from ..base import ContainerError, DiskFull
from . import disks
from .labels import DISK_DIR_LABEL, DISK_SIZE_LABEL, HOLDS_HOME_LABEL
from .options import ContainerOptions

# What mkfs, truncate or mount say when the folder of the disk images has no room left.
_NO_SPACE = "no space left on device"


class WorkspaceVolumes:
    """Create, mount, unmount and remove workspace volumes with the options of one backend."""

    def __init__(self, options: ContainerOptions) -> None:
        self.options = options
        # Volumes known to have no disk image. A volume's labels never change, so one look at
        # each (or its creation) is enough: a start of such a workspace asks Docker nothing here.
        self._plain: set[str] = set()
        self._lock = threading.Lock()

    def ensure(
        self,
        client: docker.DockerClient,
        ws: Workspace,
        labels: dict[str, str],
        profile_disk: str | None = None,
    ) -> tuple[bool, bool]:
        """Create the volume (with its disk when limited) or mount an existing one's disk.

        An existing volume keeps its files, its size and its layout. Whether the volume has a
        disk limit, and whether it holds the home folder.
        """
        volume = self._inspect(client, ws.volume_name)
        if volume is not None:
            holds_home = (volume.get("Labels") or {}).get(HOLDS_HOME_LABEL) == "1"
            return self._mount_disk(client, volume), holds_home
        if self.options.volume_holds_home():
            labels = {**labels, HOLDS_HOME_LABEL: "1"}
        holds_home = HOLDS_HOME_LABEL in labels
        size = self.options.disk_size(ws.user_id, profile_disk)
        if not size:
            client.volumes.create(name=ws.volume_name, labels=labels)
            self._remember_plain(ws.volume_name)
            return False, holds_home
        with self._lock:  # a volume of that name removed behind our back had no disk
            self._plain.discard(ws.volume_name)
        disk_dir = self.options.disk_dir
        self._run_disk_helper(disks.mount, client, disk_dir, ws.volume_name, size)
        client.volumes.create(
            name=ws.volume_name,
            driver="local",
            driver_opts={
                "type": "none",
                "o": "bind",
                "device": disks.mount_point(disk_dir, ws.volume_name),
            },
            labels={**labels, DISK_DIR_LABEL: disk_dir, DISK_SIZE_LABEL: str(size)},
        )
        return True, holds_home

    def prepare_start(self, client: docker.DockerClient, volume_name: str) -> None:
        """Mount the volume's disk image before its container starts (a reboot unmounts it).

        A volume known to have none costs nothing: no Docker call at all.
        """
        with self._lock:
            if volume_name in self._plain:
                return
        volume = self._inspect(client, volume_name)
        if volume is not None:
            self._mount_disk(client, volume)

    def remove(self, client: docker.DockerClient, volume_name: str) -> None:
        """Remove the volume, and its disk image (unmounted first) when it has one."""
        labels = self._labels(client, volume_name)
        with contextlib.suppress(docker.errors.NotFound):
            client.api.remove_volume(volume_name, force=True)
        with self._lock:
            self._plain.discard(volume_name)
        if labels is not None and DISK_DIR_LABEL in labels:
            self._run_disk_helper(
                disks.release, client, labels[DISK_DIR_LABEL], volume_name, remove=True
            )

    def unmount(self, client: docker.DockerClient, volume_name: str) -> None:
        """Unmount a kept volume's disk image (it stays, and is mounted again by a start)."""
        labels = self._labels(client, volume_name)
        if labels is not None and DISK_DIR_LABEL in labels:
            self._run_disk_helper(
                disks.release, client, labels[DISK_DIR_LABEL], volume_name, remove=False
            )

    # -- helpers -------------------------------------------------------------------------------

    def _inspect(self, client: docker.DockerClient, volume_name: str) -> dict[str, Any] | None:
        try:
            volume: dict[str, Any] = client.api.inspect_volume(volume_name)
        except docker.errors.NotFound:
            return None
        return volume

    def _labels(self, client: docker.DockerClient, volume_name: str) -> dict[str, str] | None:
        volume = self._inspect(client, volume_name)
        return None if volume is None else (volume.get("Labels") or {})

    def _remember_plain(self, volume_name: str) -> None:
        with self._lock:
            self._plain.add(volume_name)

    def _mount_disk(self, client: docker.DockerClient, volume: dict[str, Any]) -> bool:
        """Mount a volume's disk image if it has one; remember the volumes that have none."""
        labels = volume.get("Labels") or {}
        if DISK_DIR_LABEL not in labels:
            self._remember_plain(volume["Name"])
            return False
        size = int(labels.get(DISK_SIZE_LABEL, "0"))
        self._run_disk_helper(disks.mount, client, labels[DISK_DIR_LABEL], volume["Name"], size)
        return True

    def _run_disk_helper(
        self, action: Any, client: docker.DockerClient, disk_dir: str, *args: Any, **kwargs: Any
    ) -> None:
        """Run disks.mount or disks.release; a full disk_dir is named as the limit that was hit."""
        image = self.options.disk_helper_image or self.options.image
        try:
            action(client, image, disk_dir, *args, **kwargs)
        except ContainerError as err:
            if _NO_SPACE in str(err).lower():
                raise DiskFull(
                    "host",
                    "The Docker host's disk that holds the workspaces' disks "
                    f"(ContainerManager.disk_dir, {disk_dir}) is full: no workspace disk can be "
                    "made or mounted there until an operator frees room. Your files are safe.",
                ) from err
            raise
