"""The labels that tell this project's containers, volumes and networks apart, and whose they are.

Shared by the Docker and Swarm backends and the network policies: a container, service or volume
is this server's when its store label is the server's store id.
"""

from __future__ import annotations

from ...core.store import Workspace

LABEL_PREFIX = "org.jupyter.popebot-code"
MANAGED_BY_LABEL = f"{LABEL_PREFIX}.managed-by"
MANAGED_BY = "jupyter-popebot-code"
WORKSPACE_LABEL = f"{LABEL_PREFIX}.workspace-id"
OWNER_LABEL = f"{LABEL_PREFIX}.owner"
STORE_LABEL = f"{LABEL_PREFIX}.store"
# On a volume with a disk limit: the folder of its image file and the image's size in bytes.
DISK_DIR_LABEL = f"{LABEL_PREFIX}.disk-dir"
DISK_SIZE_LABEL = f"{LABEL_PREFIX}.disk-size"
# "1" on a volume mounted on the whole home folder (the workspace folder inside it), so dotfiles
# and history last like the files. Volumes made before it hold only the workspace folder.
HOLDS_HOME_LABEL = f"{LABEL_PREFIX}.holds-home"


def workspace_labels(workspace: Workspace, store_id: str) -> dict[str, str]:
    """The labels that tell this project's containers and volumes apart, and whose they are."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        WORKSPACE_LABEL: workspace.id,
        OWNER_LABEL: workspace.user_id,
        STORE_LABEL: store_id,
    }
