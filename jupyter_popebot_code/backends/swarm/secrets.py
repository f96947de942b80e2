"""Personal secrets into a Swarm workspace's running task: a one-off job on the task's node.

The manager's engine cannot `docker exec` into a container on another node, so a job service
pinned to that node does it through the node's Docker socket (as the volume removal job does):
the owner's payload reaches the job as a Swarm secret (encrypted in the Raft log, handed only to
the node that runs the job, in a tmpfs file of root's with mode 0400), and the job runs the
image's workspace-secrets-install as root in the workspace's container with the payload on its
stdin: the same files, owners and modes as on one engine. The secret object lives only while the
job runs; nothing of the value is ever in a service spec, a label, an argument or a log.

A new start of the task gets them the same way right after it runs (SecretDelivery's
container_up), so the workspace service itself never references a secret: changing one never
updates, and so never restarts, a running workspace.
"""

from __future__ import annotations

import secrets as random
import time
from typing import Any

import docker
import docker.errors

from ...errors import ContainerError
from ..docker.engine import DockerEngine
from ..docker.labels import MANAGED_BY, MANAGED_BY_LABEL
from . import jobs
from .tasks import running_task

# Where the job finds the payload (swarmkit's secret files, in order) and the node's engine.
_PAYLOAD = "/run/secrets/workspace-secrets"
# A Swarm secret holds at most 500 KB; an owner's secrets may add up to more (50 x 16 KiB).
CHUNK_BYTES = 400 * 1024
_SOCKET = "/var/run/docker.sock"
# Bounded: workspace-clone waits 30 s for the secrets of a new workspace.
JOB_TIMEOUT = 60.0
# Which workspace service a payload secret belongs to (its name, no value).
SERVICE_LABEL = "org.jupyter.popebot-code.secrets-of"

# The job: `docker exec` (create, start with stdin, inspect) over the node's socket, in Perl
# (perl-base is in every Debian image, slim ones too; curl cannot stream an exec's stdin).
# It prints the installer's output (file names only), never the payload.
EXEC_SCRIPT = r"""
use strict; use warnings; use IO::Socket::UNIX;
my ($cid, $sock, @paths) = @ARGV; my $payload = '';
for my $path (@paths) { open(my $f, '<:raw', $path) or die "no payload: $!\n";
  $payload .= do { local $/; <$f> }; close $f }
sub conn { IO::Socket::UNIX->new(Peer => $sock) or die "no Docker socket: $!\n" }
sub put { my ($s, $data) = @_; while (length $data) {
  my $n = syswrite($s, $data); die "write: $!\n" unless defined $n; substr($data, 0, $n, '') } }
sub slurp { my ($s) = @_; my $all = ''; while (sysread($s, my $c, 65536)) { $all .= $c } $all }
sub call { my ($m, $p, $b) = @_; $b //= ''; my $s = conn();
  put($s, "$m $p HTTP/1.0\r\nHost: docker\r\nContent-Type: application/json\r\n"
    . "Content-Length: " . length($b) . "\r\n\r\n$b"); my $r = slurp($s); close $s; $r }
my $r = call('POST', "/containers/$cid/exec", '{"Cmd":["/usr/local/bin/workspace-secrets-install"],'
  . '"AttachStdin":true,"AttachStdout":true,"AttachStderr":true,"User":"root",'
  . '"Env":["TTYD_CREDENTIAL="]}');
my ($id) = $r =~ /"Id":"([0-9a-f]+)"/ or die "exec create failed: " . (split /\r\n/, $r)[0] . "\n";
my $s = conn(); my $b = '{"Detach":false,"Tty":false}';
put($s, "POST /exec/$id/start HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n"
  . "Connection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: " . length($b) . "\r\n\r\n$b");
my $head = ''; while ($head !~ /\r\n\r\n/) { sysread($s, my $c, 1) or last; $head .= $c }
$head =~ m{^HTTP/1\.[01] 101} or die "exec start failed: " . (split /\r\n/, $head)[0] . "\n";
put($s, $payload); shutdown($s, 1);
my $out = slurp($s); close $s; $out =~ s/[^\x20-\x7e\n]//g; print STDERR $out;
for (1 .. 100) { my $j = call('GET', "/exec/$id/json");
  if ($j =~ /"Running":false/ && $j =~ /"ExitCode":(-?\d+)/) { exit($1 == 0 ? 0 : 1) }
  select(undef, undef, undef, 0.1) }
die "the installer did not finish\n";
"""


def running_container(client: docker.DockerClient, service: str) -> tuple[str, str, str]:
    """The node, container id and image of the service's running task."""
    task = running_task(client.api.tasks(filters={"service": service, "desired-state": "running"}))
    container = task and (task["Status"].get("ContainerStatus") or {}).get("ContainerID")
    if task is None or not container:
        raise ContainerError(f"{service} has no running task to write personal secrets into.")
    image = task["Spec"]["ContainerSpec"]["Image"]
    return str(task["NodeID"]), str(container), str(image)


def create_payload_secrets(
    client: docker.DockerClient, service: str, payload: bytes
) -> list[tuple[str, str]]:
    """Swarm secrets holding the payload (in chunks) for one delivery job: names and ids."""
    made = []
    stem = f"{service}.secrets.{int(time.time())}-{random.token_hex(4)}"
    for index, at in enumerate(range(0, max(len(payload), 1), CHUNK_BYTES)):
        name = f"{stem}.{index}"
        created = client.api.create_secret(
            name,
            payload[at : at + CHUNK_BYTES],
            labels={MANAGED_BY_LABEL: MANAGED_BY, SERVICE_LABEL: service},
        )
        made.append((name, str(created["ID"])))
    return made


def remove_payload_secrets(client: docker.DockerClient, service: str) -> None:
    """Remove the service's payload secrets (after its job, or the workspace's removal)."""
    for secret in client.api.secrets(filters={"label": f"{SERVICE_LABEL}={service}"}):
        try:
            client.api.remove_secret(secret["ID"])
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError:
            # Still in use by a job that has not gone yet: its own cleanup removes it.
            pass


def install_job(
    image: str, node_id: str, container_id: str, chunks: list[tuple[str, str]]
) -> dict[str, Any]:
    """The task of a job that installs the payload secrets into the container on its node."""
    paths = [f"{_PAYLOAD}.{index}" for index in range(len(chunks))]
    return {
        "ContainerSpec": {
            "Image": image,
            "User": "root",
            "Command": ["perl", "-e", EXEC_SCRIPT, container_id, _SOCKET, *paths],
            "Mounts": [{"Type": "bind", "Source": _SOCKET, "Target": _SOCKET}],
            "Secrets": [
                {
                    "SecretID": secret_id,
                    "SecretName": name,
                    "File": {"Name": path.rsplit("/", 1)[1], "UID": "0", "GID": "0", "Mode": 0o400},
                }
                for (name, secret_id), path in zip(chunks, paths, strict=True)
            ],
        },
        "RestartPolicy": {"Condition": "none"},
        "Placement": {"Constraints": [f"node.id=={node_id}"]},
    }


async def install(engine: DockerEngine, service: str, payload: bytes) -> None:
    """Write `payload` into the service's running task; ContainerError when it did not work."""
    node_id, container_id, image = await engine._call(running_container, service)
    chunks = await engine._call(create_payload_secrets, service, payload)
    try:
        failure = await jobs.run_job(
            engine,
            f"{service}-secrets-{int(time.time())}-{random.token_hex(2)}",
            install_job(image, node_id, container_id, chunks),
            {"ReplicatedJob": {"MaxConcurrent": 1, "TotalCompletions": 1}},
            completions=1,
            timeout=JOB_TIMEOUT,
        )
    finally:
        await engine._call(remove_payload_secrets, service)
    if failure is not None:
        raise ContainerError(f"Writing personal secrets into {service} failed: {failure}")
