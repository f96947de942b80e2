"""A git server over HTTP that wants a token: git's own http-backend behind a small local server.

It stands for GitHub or GitLab: any user name, the token as the password (Basic auth), else 401.
It listens on one address the test gives (the test network's gateway), and records what it was
asked, so a test can tell a clone and a push from a refused attempt.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

# The request headers http-backend reads, as CGI variables.
_CGI_HEADERS = {
    "Content-Type": "CONTENT_TYPE",
    "Content-Encoding": "HTTP_CONTENT_ENCODING",
    "Git-Protocol": "GIT_PROTOCOL",
}


@dataclass
class HttpGitServer:
    """`repo.git` with `main` holding README.md, at `base_url`, for `token` only."""

    base_url: str
    token: str
    served: Path
    # (method, path, authorized) of every request, in order.
    requests: list[tuple[str, str, bool]] = field(default_factory=list)

    @property
    def host(self) -> str:
        return self.base_url.removeprefix("http://")

    @property
    def url(self) -> str:
        return f"{self.base_url}/repo.git"

    def branches(self) -> str:
        result = subprocess.run(
            ["git", "-C", str(self.served / "repo.git"), "branch", "--list"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout


def _handler(server: HttpGitServer) -> type[BaseHTTPRequestHandler]:
    expected = server.token

    class GitHandler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet: pytest shows what the test asserts."""

        def _authorized(self) -> bool:
            scheme, _, encoded = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                _, _, password = base64.b64decode(encoded).decode().partition(":")
            except ValueError:
                return False
            return password == expected

        def _serve(self) -> None:
            authorized = self._authorized()
            server.requests.append((self.command, self.path, authorized))
            if not authorized:
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path, _, query = self.path.partition("?")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.served),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": "token-user",  # enables receive-pack (push)
                "REQUEST_METHOD": self.command,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "CONTENT_LENGTH": str(len(body)),
            }
            for header, variable in _CGI_HEADERS.items():
                if header in self.headers:
                    env[variable] = self.headers[header]
            result = subprocess.run(
                ["git", "http-backend"], input=body, env=env, capture_output=True, timeout=60
            )
            head, _, payload = result.stdout.partition(b"\r\n\r\n")
            status = 200
            headers = []
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.lower() == "status":
                    status = int(value.split()[0])
                elif name:
                    headers.append((name, value.strip()))
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = _serve
        do_POST = _serve

    return GitHandler


@contextmanager
def serve_http_git(root: Path, listen: str, token: str) -> Iterator[HttpGitServer]:
    """Make `repo.git` under `root` and serve it over HTTP on `listen` (a free port)."""
    source, served = root / "http-source", root / "http-served"
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main", str(source)], check=True, timeout=30)
    (source / "README.md").write_text("private repository\n")
    subprocess.run([*git, "-C", str(source), "add", "."], check=True, timeout=30)
    subprocess.run([*git, "-C", str(source), "commit", "-qm", "main"], check=True, timeout=30)
    bare = served / "repo.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(source), str(bare)], check=True, timeout=30)
    subprocess.run(["git", "-C", str(bare), "config", "http.receivepack", "true"], check=True)
    server = HttpGitServer("", token, served)
    httpd = ThreadingHTTPServer((listen, 0), _handler(server))
    server.base_url = f"http://{listen}:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, name="http-git", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
