"""Writing a workspace owner's secrets into their running container, on a Docker thread.

The files go through the stdin of one `docker exec` as root of the image's
workspace-secrets-install: never a process argument, an environment variable, a label or a file
on the host, and the container's own user cannot change them.
"""

from __future__ import annotations

import socket
import struct

import docker

from ...errors import ContainerError

INSTALL_COMMAND = ["/usr/local/bin/workspace-secrets-install"]
# What the installer prints at most (it names files, never their contents).
_MAX_OUTPUT = 64 * 1024


def install_secret_files(client: docker.DockerClient, container_name: str, payload: bytes) -> None:
    """Run the installer in the container with `payload` on its stdin; raise unless it exits 0."""
    api = client.api
    exec_id = api.exec_create(
        container_name,
        INSTALL_COMMAND,
        stdin=True,
        stdout=True,
        stderr=True,
        user="root",
        # Every exec gets the container's environment: ttyd's credential stays out of it.
        environment={"TTYD_CREDENTIAL": ""},
    )["Id"]
    stream = api.exec_start(exec_id, socket=True)
    raw: socket.socket = getattr(stream, "_sock", stream)
    try:
        raw.sendall(payload)
        raw.shutdown(socket.SHUT_WR)  # end of stdin: the installer's loop finishes
        output = _read_frames(raw)
    finally:
        # The socket closes once its file wrapper (the exec's response stream) is closed too.
        stream.close()
        raw.close()
    code = api.exec_inspect(exec_id).get("ExitCode")
    if code != 0:
        said = output.decode("utf-8", "replace").strip().splitlines()
        raise ContainerError(
            f"Writing personal secrets into {container_name} failed (exit code {code}): "
            + (said[-1] if said else "no output")
        )


def _read_frames(raw: socket.socket) -> bytes:
    """stdout and stderr of a non-tty exec: frames of an 8-byte header and a payload."""
    buffer = b""
    while len(buffer) < _MAX_OUTPUT:
        chunk = raw.recv(65536)
        if not chunk:
            break
        buffer += chunk
    output = b""
    while len(buffer) >= 8:
        (size,) = struct.unpack(">I", buffer[4:8])
        output += buffer[8 : 8 + size]
        buffer = buffer[8 + size :]
    return output
