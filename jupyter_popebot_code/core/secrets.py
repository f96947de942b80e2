"""Personal secrets: what a user keeps for their own workspaces, checked and stored encrypted.

Each secret is an environment variable of its owner's shells; one with a `git_host` is also the
password git gives that host. Values are encrypted (secret_crypto) in a table of the workspace
store's SQLite file, keyed by owner: nobody else's request ever reaches them, and only names and
metadata ever leave this module through the REST API. Values leave only towards the owner's own
containers (secret_delivery).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar
from urllib.parse import urlsplit

from traitlets import Int, Unicode
from traitlets.config import LoggingConfigurable

from ..errors import InvalidInput, SecretNotFound, TooManySecrets, UnreadableSecret
from .secret_crypto import SecretCipher, load_key_file, parse_keys
from .sqlite import write_transaction

T = TypeVar("T")

NAME_MAX_LENGTH = 64
VALUE_MAX_BYTES = 16 * 1024
GIT_HOST_MAX_LENGTH = 255
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
# What the workspace itself needs, or what would change how its shells and git run.
RESERVED_NAMES = frozenset(
    {
        "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LANGUAGE", "LC_ALL",
        "PWD", "OLDPWD", "SHLVL", "HOSTNAME", "MAIL", "IFS", "ENV", "BASH_ENV", "PS1", "PS2",
        "PS4", "PROMPT_COMMAND", "TMPDIR", "TZ", "TMUX", "TMUX_PANE", "TTYD_CREDENTIAL",
        "WORKSPACE_DIR", "WORKSPACE_CLONE_STATE", "REPO_URL", "BRANCH", "GIT_ALLOW_PROTOCOL",
        "GIT_TERMINAL_PROMPT", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS",
        "GIT_EXEC_PATH", "GIT_DIR", "GIT_WORK_TREE", "DISABLE_AUTOUPDATER", "POPEBOT_TEST",
    }
)  # fmt: skip
RESERVED_PREFIXES = ("LD_", "LC_", "BASH_", "GIT_CONFIG", "GIT_TRACE", "TTYD_")
# A host name or IPv4 address, lower-case, with an optional port; IPv6 is checked apart.
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?")


@dataclass(frozen=True)
class SecretInfo:
    """What may be shown of a secret: never its value."""

    name: str
    git_host: str | None
    updated_at: float

    def to_json(self) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(self.updated_at, tz=timezone.utc)
        return {
            "name": self.name,
            "git_host": self.git_host,
            "updated_at": stamp.isoformat(timespec="milliseconds"),
        }


@dataclass(frozen=True)
class Secret:
    """A secret with its value, for delivery to its owner's containers only."""

    name: str
    value: str
    git_host: str | None

    def __repr__(self) -> str:  # a stray log line or traceback never shows the value
        return f"Secret(name={self.name!r}, git_host={self.git_host!r}, value=<hidden>)"


def validate_secret_name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidInput("name is required.", "name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"name must be at most {NAME_MAX_LENGTH} characters.", "name")
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "name must be an environment variable name: upper-case letters, digits and '_', "
            "not starting with a digit (e.g. GH_TOKEN).",
            "name",
        )
    if name in RESERVED_NAMES or name.startswith(RESERVED_PREFIXES):
        raise InvalidInput(f"{name} is used by the workspace itself; choose another name.", "name")
    return name


def validate_git_host(host: Any) -> str | None:
    """A host (name, IPv4, or [IPv6]) with an optional port, lower-cased; None for no host."""
    if host is None or host == "":
        return None
    if not isinstance(host, str) or len(host) > GIT_HOST_MAX_LENGTH:
        raise InvalidInput("git_host must be a host name such as github.com, or null.", "git_host")
    hint = "git_host must be a host name or address, with a port when not the default (e.g. "
    hint += "github.com or git.internal:8443), without a scheme or path."
    lowered = host.strip().lower()
    if not lowered or any(c in lowered for c in "/@?#\\ \t") or not lowered.isascii():
        raise InvalidInput(hint, "git_host")
    try:
        parts = urlsplit(f"//{lowered}")
        port = parts.port
    except ValueError as err:
        raise InvalidInput(hint, "git_host") from err
    hostname = parts.hostname or ""
    if lowered.startswith("["):
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError as err:
            raise InvalidInput(hint, "git_host") from err
    elif not _HOST.fullmatch(hostname):
        raise InvalidInput(hint, "git_host")
    if port is not None and not 0 < port < 65536:
        raise InvalidInput("git_host has an invalid port.", "git_host")
    return lowered


def validate_value(value: Any, for_git: bool) -> str:
    """A value an environment variable can hold; one line of printable text for git."""
    if not isinstance(value, str) or value == "":
        raise InvalidInput("value is required (a non-empty string).", "value")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as err:
        raise InvalidInput("value is not valid Unicode text.", "value") from err
    if size > VALUE_MAX_BYTES:
        raise InvalidInput(f"value must be at most {VALUE_MAX_BYTES} bytes.", "value")
    if "\0" in value:
        raise InvalidInput("value must not contain NUL characters.", "value")
    if for_git and any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidInput(
            "a value for a git host must be one line without tabs or control characters (a token).",
            "value",
        )
    return value


_SCHEMA = """
CREATE TABLE IF NOT EXISTS personal_secrets (
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    sealed TEXT NOT NULL,
    git_host TEXT,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (owner, name)
)
"""


class SecretStore:
    """The encrypted table, on its own connection to the workspace store's file."""

    def __init__(self, path: str, cipher: SecretCipher) -> None:
        self.cipher = cipher
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute(_SCHEMA)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._lock, self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def listing(self, owner: str) -> list[SecretInfo]:
        with self._lock:
            rows = self._db.execute(
                "SELECT name, git_host, updated_at FROM personal_secrets WHERE owner = ? "
                "ORDER BY name",
                (owner,),
            ).fetchall()
        return [SecretInfo(name, host, updated) for name, host, updated in rows]

    def values(self, owner: str) -> tuple[list[Secret], list[str]]:
        """The owner's secrets with their values, and the names of those no key decrypts."""
        with self._lock:
            rows = self._db.execute(
                "SELECT name, sealed, git_host FROM personal_secrets WHERE owner = ? ORDER BY name",
                (owner,),
            ).fetchall()
        found, unreadable = [], []
        for name, sealed, host in rows:
            try:
                found.append(Secret(name, self.cipher.decrypt(owner, name, sealed), host))
            except UnreadableSecret:
                unreadable.append(name)
        return found, unreadable

    def put(
        self, owner: str, name: str, value: str, git_host: str | None, limit: int
    ) -> tuple[SecretInfo, bool]:
        """Add or replace; whether it is new. Over `limit` (0: none) raises TooManySecrets."""
        sealed = self.cipher.encrypt(owner, name, value)
        now = time.time()
        with self._transaction() as db:
            exists = db.execute(
                "SELECT 1 FROM personal_secrets WHERE owner = ? AND name = ?", (owner, name)
            ).fetchone()
            if exists is None and limit:
                (count,) = db.execute(
                    "SELECT COUNT(*) FROM personal_secrets WHERE owner = ?", (owner,)
                ).fetchone()
                if count >= limit:
                    raise TooManySecrets(
                        f"You already have {count} secrets, the most this server allows "
                        f"({limit}). Delete one to add another."
                    )
            db.execute(
                "INSERT INTO personal_secrets (owner, name, sealed, git_host, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (owner, name) DO UPDATE SET "
                "sealed = excluded.sealed, git_host = excluded.git_host, "
                "updated_at = excluded.updated_at",
                (owner, name, sealed, git_host, now, now),
            )
        return SecretInfo(name, git_host, now), exists is None

    def delete(self, owner: str, name: str) -> bool:
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM personal_secrets WHERE owner = ? AND name = ?", (owner, name)
            )
            return cursor.rowcount > 0

    def reencrypt(self) -> tuple[int, int]:
        """Encrypt every value under the current key; (re-encrypted, unreadable) counts."""
        done = unreadable = 0
        with self._transaction() as db:
            rows = db.execute("SELECT owner, name, sealed FROM personal_secrets").fetchall()
            for owner, name, sealed in rows:
                if self.cipher.is_current(sealed):
                    continue
                try:
                    value = self.cipher.decrypt(owner, name, sealed)
                except UnreadableSecret:
                    unreadable += 1
                    continue
                db.execute(
                    "UPDATE personal_secrets SET sealed = ? WHERE owner = ? AND name = ?",
                    (self.cipher.encrypt(owner, name, value), owner, name),
                )
                done += 1
        return done, unreadable


class PersonalSecrets(LoggingConfigurable):
    """The owner-scoped operations of the REST API, off the event loop; notifies on changes."""

    key = Unicode(
        help=(
            "Keys that encrypt personal secrets at rest (AES-256-GCM): base64 of 32 random bytes "
            "each (`openssl rand -base64 32`), separated by spaces or new lines. The first "
            "encrypts; every one decrypts, so a key is rotated by putting a new one first and "
            "keeping the old one until the server has started once (it re-encrypts every secret "
            "with the first key at start). Empty (the default): the keys are read from key_file."
        ),
    ).tag(config=True)

    key_file = Unicode(
        help=(
            "File holding the keys of personal secrets, one per line, the first encrypting (see "
            "`key`), used when `key` is empty. Created with one new key and mode 0600 on the "
            "first start when missing; a file that others can read is refused. Keep it (and a "
            "backup) apart from the store: without it no secret can be read, and with the store "
            "it reveals them all. Default: secrets.key next to CodeWorkspacesApp.db_path."
        ),
    ).tag(config=True)

    max_per_owner = Int(
        50,
        min=0,
        help=(
            "Personal secrets one owner may keep; adding more answers 403 with a message. "
            "0: no limit."
        ),
    ).tag(config=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store: SecretStore | None = None
        # Called with the owner after each change (delivery to their running workspaces).
        self.on_change: Callable[[str], Awaitable[None]] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="popebot-secrets")

    def open(self, db_path: str) -> None:
        """Load the keys (making the key file on the first start), open the table, re-encrypt.

        Raises SecretKeyError for keys that cannot be used.
        """
        if self.key.strip():
            keys = parse_keys(self.key, "PersonalSecrets.key")
            source = "PersonalSecrets.key"
        else:
            path = self.key_file or os.path.join(
                os.path.dirname(os.path.abspath(db_path)), "secrets.key"
            )
            keys, created = load_key_file(path)
            source = path
            if created:
                self.log.warning(
                    "Created the key of personal secrets in %s (mode 0600): back it up and keep "
                    "it apart from the store; without it no stored secret can be read",
                    path,
                )
        self.store = SecretStore(db_path, SecretCipher(keys))
        done, unreadable = self.store.reencrypt()
        if done:
            self.log.info("Re-encrypted %d personal secrets with the first key of %s", done, source)
        if unreadable:
            self.log.warning(
                "%d personal secrets do not decrypt with the keys of %s (a key was removed?): "
                "their owners must set them again",
                unreadable,
                source,
            )
        self.log.info("Personal secrets: encrypted with the first key of %s", source)

    def _store(self) -> SecretStore:
        if self.store is None:
            raise RuntimeError("PersonalSecrets.open was not called")
        return self.store

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    async def listing(self, owner: str) -> list[SecretInfo]:
        return await self._run(self._store().listing, owner)

    async def values(self, owner: str) -> tuple[list[Secret], list[str]]:
        return await self._run(self._store().values, owner)

    async def put(
        self, owner: str, name: Any, value: Any, git_host: Any
    ) -> tuple[SecretInfo, bool]:
        name = validate_secret_name(name)
        host = validate_git_host(git_host)
        value = validate_value(value, for_git=host is not None)
        saved = await self._run(self._store().put, owner, name, value, host, self.max_per_owner)
        await self._changed(owner)
        return saved

    async def delete(self, owner: str, name: str) -> None:
        if not await self._run(self._store().delete, owner, name):
            raise SecretNotFound(name)
        await self._changed(owner)

    async def _changed(self, owner: str) -> None:
        if self.on_change is not None:
            await self.on_change(owner)

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)
        if self.store is not None:
            store = self.store
            threading.Thread(target=store.close, name="popebot-secrets-close", daemon=True).start()
