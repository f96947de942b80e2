"""Encryption of personal secrets at rest: AES-256-GCM under operator keys, with key ids.

The store keeps only what `SecretCipher.encrypt` returns: the id of the key, a random nonce and
the ciphertext, bound to its owner and name (associated data), so the store file alone reveals no
value and a row copied under another owner or name does not decrypt. Several keys may be given
(the first encrypts, every one decrypts): that is how a key is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ..errors import SecretKeyError, UnreadableSecret

KEY_BYTES = 32
NONCE_BYTES = 12
# The format of a stored value: "v1:<key id>:<base64 of nonce + ciphertext>".
FORMAT = "v1"


def new_key() -> str:
    """A fresh key as written to the key file: base64 of 32 random bytes."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def parse_keys(text: str, source: str) -> list[bytes]:
    """The keys in `text` (one per line or separated by spaces; `#` starts a comment)."""
    keys = []
    for line in text.splitlines():
        for word in line.split("#", 1)[0].split():
            try:
                key = base64.b64decode(word.replace("-", "+").replace("_", "/"), validate=True)
            except (binascii.Error, ValueError) as err:
                raise SecretKeyError(f"{source}: a key is not valid base64 ({err}).") from err
            if len(key) != KEY_BYTES:
                raise SecretKeyError(
                    f"{source}: a key must be {KEY_BYTES} bytes in base64 (e.g. the output of "
                    f"`openssl rand -base64 {KEY_BYTES}`), not {len(key)} bytes."
                )
            keys.append(key)
    return keys


def load_key_file(path: str, log_created: bool = True) -> tuple[list[bytes], bool]:
    """The keys in the file at `path`, created with one new key (mode 0600) when absent.

    Also whether it was created. A file readable by others is refused: it unlocks every secret.
    """
    file = Path(path)
    created = False
    if not file.exists():
        file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another server made it meanwhile: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(
                    "# Key of jupyter-popebot-code's personal secrets: keep it, and keep it "
                    "private.\n# Rotation: put a new key on the first line, keep the old ones "
                    "below until the\n# server has started once with it (docs/secrets.md).\n"
                    f"{new_key()}\n"
                )
            created = True
    mode = file.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretKeyError(
            f"{path} is readable by other users (mode {mode:04o}): `chmod 600 {path}`."
        )
    keys = parse_keys(file.read_text(), path)
    if not keys:
        raise SecretKeyError(f"{path} holds no key.")
    return keys, created


def key_id(key: bytes) -> str:
    """A short public name of a key, stored with each value: which key decrypts it."""
    return hashlib.sha256(b"jupyter-popebot-code secrets\0" + key).hexdigest()[:12]


def _associated_data(owner: str, name: str) -> bytes:
    return f"{FORMAT}\0{owner}\0{name}".encode()


class SecretCipher:
    """Encrypts with the first key, decrypts with any of them."""

    def __init__(self, keys: Iterable[bytes]) -> None:
        listed = list(keys)
        if not listed:
            raise SecretKeyError("No key for personal secrets.")
        self._keys = {key_id(key): AESGCM(key) for key in listed}
        self.current_id = key_id(listed[0])

    def encrypt(self, owner: str, name: str, value: str) -> str:
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._keys[self.current_id].encrypt(
            nonce, value.encode("utf-8"), _associated_data(owner, name)
        )
        blob = base64.b64encode(nonce + sealed).decode("ascii")
        return f"{FORMAT}:{self.current_id}:{blob}"

    def decrypt(self, owner: str, name: str, stored: str) -> str:
        version, _, rest = stored.partition(":")
        kid, _, blob = rest.partition(":")
        aead = self._keys.get(kid)
        if version != FORMAT or aead is None:
            raise UnreadableSecret(f"encrypted with key id {kid!r}, which is not configured")
        try:
            raw = base64.b64decode(blob, validate=True)
            return aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], _associated_data(owner, name)
            ).decode("utf-8")
        except (InvalidTag, binascii.Error, ValueError) as err:
            raise UnreadableSecret("the stored value does not decrypt (altered?)") from err

    def is_current(self, stored: str) -> bool:
        """Whether `stored` was encrypted with the key that encrypts now."""
        return stored.split(":", 2)[1:2] == [self.current_id]
