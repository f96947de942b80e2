"""The options that bound what a workspace can write: its disk, its tmpfs, its log.

Read by both container backends (through `ContainerOptions`, in the `ContainerManager` section):
the kernel enforces each size, so a full disk is "No space left on device" for that workspace alone.
"""

from __future__ import annotations

import docker
import docker.errors
from traitlets import Bool, Int, Unicode
from traitlets.config import LoggingConfigurable

from ...config_traits import Dict
from ..base import ContainerError
from . import disks


class StorageOptions(LoggingConfigurable):
    """Sizes of a workspace's tmpfs, log and disk, and what happens to its disk on delete."""

    tmp_size = Unicode(
        "512m",
        help=(
            "Size of the tmpfs mounted on /tmp in every workspace container, in Docker's notation "
            "(e.g. '1g'). The container's root file system is read-only, so this and home_size "
            "bound what a user can write outside the workspace volume; a write past the size "
            "fails with 'No space left on device'. tmpfs pages count against the container's "
            "memory limit (mem_limit) while they hold data."
        ),
    ).tag(config=True)

    home_size = Unicode(
        "256m",
        help=(
            "Size of the tmpfs holding the home folder (/home/coder) of a workspace whose volume "
            "holds only the workspace folder: one made before volumes held the home folder, or "
            "with workspace_dir outside it. Such a home starts from the image's skeleton "
            "dotfiles at every container start. Counts against the memory limit like tmp_size."
        ),
    ).tag(config=True)

    log_max_size = Unicode(
        "10m",
        help=(
            "Largest size of a container's log file (its terminal's stdout/stderr, json-file "
            "driver) before Docker rotates it, in Docker's notation; log_max_files files are "
            "kept, so a user flooding /proc/1/fd/1 cannot fill the host's disk. '' or '0': "
            "the engine's default (often no cap)."
        ),
    ).tag(config=True)

    log_max_files = Int(
        3, help="How many rotated log files of log_max_size Docker keeps per container."
    ).tag(config=True)

    disk_limit = Unicode(
        "",
        help=(
            "Size of each workspace's volume in Docker's notation (e.g. '10g'), enforced by the "
            "kernel: the volume is an ext4 image file of that size, loop-mounted on the host "
            "(see disk_dir), and a write past it fails with 'No space left on device' for that "
            "workspace alone. Needs an engine that grants containers SYS_ADMIN, with loop "
            "devices and mkfs.ext4 on its host (not on Swarm). Applies to volumes created "
            "while it is set; an existing volume keeps its size. '' or '0': no limit. Unset, it "
            "is '10g' on a multi-user server with one Docker engine (so that no user can fill "
            "the host's disk) and '' on a single-user server or a Swarm; the server logs which "
            "at start."
        ),
    ).tag(config=True)

    owner_disk_limit: Dict[str, str] = Dict(
        key_trait=Unicode(),
        value_trait=Unicode(),
        help=(
            "disk_limit per owner, e.g. {'alice': '50g', 'bot': '0'}: overrides disk_limit for "
            "the volumes of that owner's new workspaces."
        ),
    ).tag(config=True)

    disk_dir = Unicode(
        "/var/lib/jupyter-popebot-code/disks",
        help=(
            "Folder on the Docker host (in dockerd's mount namespace) that holds the image "
            "files of workspaces with a disk_limit (<volume>.img) and their mount points "
            "(<volume>). Give it room for every workspace's limit: images are sparse, so they "
            "take only what is written."
        ),
    ).tag(config=True)

    disk_helper_image = Unicode(
        "",
        help=(
            "Image of the short-lived privileged container that makes and mounts disk images "
            "(it needs sh and nsenter; the host's own mkfs.ext4 and mount do the work). "
            "Empty: the workspace image."
        ),
    ).tag(config=True)

    keep_volume_on_delete = Bool(
        False,
        help="Keep a workspace's volume (its files) when the workspace is deleted.",
    ).tag(config=True)

    def tmpfs_bytes(self) -> tuple[int, int]:
        """tmp_size and home_size in bytes (a bad value is a configuration error)."""
        sizes = []
        for name in ("tmp_size", "home_size"):
            try:
                size = int(docker.utils.parse_bytes(getattr(self, name)))
            except docker.errors.DockerException as error:
                raise ContainerError(f"ContainerManager.{name}: {error}") from error
            if size <= 0:
                raise ContainerError(f"ContainerManager.{name} must be a positive size.")
            sizes.append(size)
        return sizes[0], sizes[1]

    def disk_size(self, owner: str, profile_disk: str | None = None) -> int:
        """Bytes of a new volume of this owner (0: no limit).

        owner_disk_limit, else the workspace profile's disk limit, else disk_limit.
        """
        fallback = self.disk_limit if profile_disk is None else profile_disk
        return disks.parse_size(self.owner_disk_limit.get(owner, fallback))

    def log_options(self) -> dict[str, str]:
        """The json-file log rotation (log_max_size x log_max_files); {} for the engine's own."""
        if self.log_max_size in ("", "0"):
            return {}
        return {"max-size": self.log_max_size, "max-file": str(self.log_max_files)}
