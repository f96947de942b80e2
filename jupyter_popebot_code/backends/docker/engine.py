"""The one seam to the blocking Docker SDK: a client, a small thread pool, errors translated.

Every SDK call is blocking, so all of them go through `DockerEngine._call`, which runs them on the
pool: Tornado's event loop never waits on Docker. Errors come out as the three exceptions below,
with messages a user can act on and never the engine URL's credentials.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import docker
import docker.errors
import requests.exceptions
from traitlets import Float, Unicode
from traitlets.config import LoggingConfigurable

from ... import metrics
from ...errors import ContainerError, ContainerMissing, DiskFull, DockerUnavailable

T = TypeVar("T")


def redact_url(url: str) -> str:
    """`url` without its user part (a name alone can be a token), for messages users see."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]))


def _caused_by(error: BaseException | None, kind: type[BaseException]) -> bool:
    """Whether `kind` is anywhere in the chain of causes (requests wraps socket errors deeply)."""
    seen = 0
    while error is not None and seen < 20:
        if isinstance(error, kind) or any(isinstance(arg, kind) for arg in error.args):
            return True
        nested = [arg for arg in error.args if isinstance(arg, BaseException)]
        error = error.__cause__ or error.__context__ or (nested[0] if nested else None)
        seen += 1
    return False


class DockerEngine(LoggingConfigurable):
    """A Docker client used only from a thread pool; the base of the container manager."""

    docker_host = Unicode(
        "",
        help=(
            "Docker engine URL, e.g. unix:///var/run/docker.sock or tcp://host:2376. Empty: found "
            "the standard way, from DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH."
        ),
    ).tag(config=True)

    docker_timeout = Float(120.0, help="Seconds before a single Docker API call is given up.").tag(
        config=True
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="popebot-docker")
        self._client: docker.DockerClient | None = None
        self._client_lock = threading.Lock()

    # -- the one seam to the blocking SDK --------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self._guarded(fn, args, kwargs))

    def _guarded(self, fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any]) -> T:
        try:
            return fn(self._docker(), *args, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as err:
            # Start afresh when the engine is back: new connections, API version negotiated again.
            self._drop_client()
            metrics.engine_error(unavailable=True)
            raise DockerUnavailable(self._unreachable_message(err)) from err
        except docker.errors.ImageNotFound as err:
            metrics.engine_error(unavailable=False)
            raise ContainerError(self._image_missing_message()) from err
        except docker.errors.NotFound as err:
            raise ContainerMissing(str(err.explanation or err)) from err
        except docker.errors.APIError as err:
            metrics.engine_error(unavailable=False)
            if "no space left on device" in str(err.explanation or err).lower():
                raise DiskFull(
                    "host",
                    "The Docker host's disk is full: no workspace container can be made or "
                    "started there until an operator frees room. Your files are safe.",
                ) from err
            raise ContainerError(f"Docker refused the request: {err.explanation or err}") from err

    async def run_with_client(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(client, *args)` on the Docker thread pool, errors translated as every call."""
        return await self._call(fn, *args)

    def _docker(self) -> docker.DockerClient:
        with self._client_lock:
            if self._client is None:
                try:
                    self._client = self._new_client()
                except docker.errors.DockerException as err:
                    metrics.engine_error(unavailable=True)
                    raise DockerUnavailable(self._unreachable_message(err)) from err
            return self._client

    def _new_client(self) -> docker.DockerClient:
        if self.docker_host:
            return docker.DockerClient(base_url=self.docker_host, timeout=int(self.docker_timeout))
        return docker.from_env(timeout=int(self.docker_timeout))

    def _unreachable_message(self, error: BaseException) -> str:
        """What the user is told; the engine URL's credentials stay in the log."""
        where = self.docker_host or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        self.log.warning("Docker engine at %s: %s", where, error)
        shown = redact_url(where)
        if _caused_by(error, PermissionError):
            return (
                f"This Jupyter server's user may not use the Docker socket at {shown} "
                "(permission denied). Run the server as a user in the `docker` group, or point "
                "ContainerManager.docker_host at an engine it may use."
            )
        return (
            f"The Docker engine at {shown} is not reachable. Start it (for example "
            "`scripts/ensure-docker.sh`, or `systemctl start docker`) and try again."
        )

    def _drop_client(self) -> None:
        with self._client_lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    def _image_missing_message(self) -> str:
        return "The image is not on the Docker engine."

    def close(self) -> None:
        """Stop taking calls; never waits, even on a call stuck talking to the engine."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        # The client lock may be held for docker_timeout by a thread negotiating the API version.
        threading.Thread(target=self._drop_client, name="popebot-docker-close", daemon=True).start()
