#!/usr/bin/python3
"""Start the Jupyter server of a swarm manager: its address and token worked out, then exec.

- ServerApp.ip: this container's address on the front network (POPEBOT_FRONT_NETWORK, default
  jupyter-front), asked from the Docker socket. Jupyter listens there only: the container also
  joins every workspace's overlay, where workspaces must find nothing listening.
- The token: JUPYTER_TOKEN when set, else one made on the first start and kept on the store
  volume (so an upgraded container takes the same one).
- The store: /var/lib/jupyter-popebot-code/workspaces.sqlite, on that volume.

Options for `jupyter server` come as the container's arguments. `--health`: exit 0 when the
server answers on its address (the image's health check).
"""

import os
import secrets
import socket
import sys
import urllib.request

import docker

STATE = "/var/lib/jupyter-popebot-code"
PORT = 8888


def front_address() -> str:
    network = os.environ.get("POPEBOT_FRONT_NETWORK", "jupyter-front")
    client = docker.from_env(timeout=30)
    try:
        # Docker's default hostname of a container is its short id.
        me = client.api.inspect_container(socket.gethostname())
    finally:
        client.close()
    networks = me["NetworkSettings"]["Networks"] or {}
    address = (networks.get(network) or {}).get("IPAddress")
    if not address:
        sys.exit(
            f"popebot-server: this container is not on network {network!r} "
            f"(POPEBOT_FRONT_NETWORK); it is on {sorted(networks)}"
        )
    return str(address)


def token() -> str:
    if os.environ.get("JUPYTER_TOKEN"):
        return os.environ["JUPYTER_TOKEN"]
    path = os.path.join(STATE, "token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    with open(path) as source:
        return source.read().strip()


def main() -> None:
    if sys.argv[1:] == ["--health"]:
        with open(os.path.join(STATE, "address")) as source:
            address = source.read().strip()
        urllib.request.urlopen(f"http://{address}:{PORT}/api/", timeout=4)
        return
    os.makedirs(STATE, exist_ok=True)
    address = front_address()
    with open(os.path.join(STATE, "address"), "w") as out:
        out.write(address)
    os.environ["JUPYTER_TOKEN"] = token()
    os.makedirs("/root/work", exist_ok=True)
    command = [
        "python3", "-m", "jupyter_server", "--no-browser", "--allow-root",
        f"--ServerApp.ip={address}", f"--ServerApp.port={PORT}", "--ServerApp.port_retries=0",
        "--ServerApp.root_dir=/root/work",
        f"--CodeWorkspacesApp.db_path={STATE}/workspaces.sqlite",
        "--CodeWorkspacesApp.container_manager_class="
        "jupyter_popebot_code.backends.swarm.SwarmContainerManager",
        *sys.argv[1:],
    ]  # fmt: skip
    os.execvp(command[0], command)  # noqa: S606 # the server replaces this program


if __name__ == "__main__":
    main()
