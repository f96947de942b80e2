"""Auth.js (next-auth v5) session tokens and cookies, decoded exactly as @auth/core 0.41.3 does.

Plain data in, plain data out, with no Jupyter or Tornado imports: the identity provider in
`authjs.py` is one user of it, anything else that must read a Pope Bot session can be another.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from jwcrypto.common import JWException
from jwcrypto.jwe import JWE
from jwcrypto.jwk import JWK


# Defined here, not in errors.py, so that this module stands alone (usable outside Jupyter);
# errors.py re-exports them into the one table.
class SessionTokenError(Exception):
    """A session token that must not be trusted; the message is a fixed reason, never a secret."""


class NoSessionCookie(SessionTokenError):
    """The request carries no session cookie under any of the accepted names."""


SESSION_COOKIE_NAME = "authjs.session-token"
SECURE_SESSION_COOKIE_NAME = f"__Secure-{SESSION_COOKIE_NAME}"
# Precedence: a __Secure- cookie can only have been set over https, a plain one by anyone who
# can talk plain http to the host (cookie injection), so the __Secure- one is the stronger claim.
DEFAULT_COOKIE_NAMES = (SECURE_SESSION_COOKIE_NAME, SESSION_COOKIE_NAME)

CLOCK_TOLERANCE_SECONDS = 15
# Key length and thumbprint hash per content encryption, as @auth/core derives them.
_KEY_SPECS: dict[str, tuple[int, hashes.HashAlgorithm]] = {
    "A256CBC-HS512": (64, hashes.SHA512()),
    "A256GCM": (32, hashes.SHA256()),
}
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_CHUNK_INDEX = re.compile(r"0|[1-9][0-9]{0,3}")


@dataclass(frozen=True)
class SessionIdentity:
    """Who a session belongs to: `username` is the token's `sub` (the workspace owner)."""

    username: str
    name: str
    initials: str | None
    avatar_url: str | None
    email: str | None = None


def _b64url_decode(part: str) -> bytes:
    if not _BASE64URL.fullmatch(part):
        raise SessionTokenError("token is not base64url")
    try:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise SessionTokenError("token is not base64url") from None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """JSON object hook refusing duplicate names, so no two parsers can read different headers."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise SessionTokenError("duplicate name in token header")
        result[name] = value
    return result


def _protected_header(encoded: str) -> dict[str, Any]:
    try:
        header = json.loads(_b64url_decode(encoded), object_pairs_hook=_unique_keys)
    except (UnicodeDecodeError, ValueError):
        raise SessionTokenError("token header is not JSON") from None
    if not isinstance(header, dict):
        raise SessionTokenError("token header is not a JSON object")
    return header


@functools.lru_cache(maxsize=64)
def _derived_key(secret: str, cookie_name: str, enc: str) -> tuple[JWK, str]:
    """Auth.js's encryption key for one secret and cookie name, with its `kid` thumbprint."""
    length, thumbprint_hash = _KEY_SPECS[enc]
    raw = HKDF(
        algorithm=hashes.SHA256(),
        length=length,
        salt=cookie_name.encode(),
        info=f"Auth.js Generated Encryption Key ({cookie_name})".encode(),
    ).derive(secret.encode())
    key = JWK(kty="oct", k=base64.urlsafe_b64encode(raw).rstrip(b"=").decode())
    return key, key.thumbprint(thumbprint_hash)


def _select_key(secrets: Sequence[str], cookie_name: str, enc: str, kid: str | None) -> JWK:
    """The key to decrypt with: the secret whose thumbprint is `kid`, or the first without one."""
    if kid is None:
        return _derived_key(secrets[0], cookie_name, enc)[0]
    for secret in secrets:
        key, thumbprint = _derived_key(secret, cookie_name, enc)
        if hmac.compare_digest(thumbprint.encode(), kid.encode()):
            return key
    raise SessionTokenError("no configured secret matches the token's kid")


def _check_times(claims: Mapping[str, Any], now: float) -> None:
    exp = claims.get("exp")
    # @auth/core always sets exp; a token without one would never expire.
    if not isinstance(exp, (int, float)) or isinstance(exp, bool):
        raise SessionTokenError("token has no numeric exp claim")
    if exp <= now - CLOCK_TOLERANCE_SECONDS:
        raise SessionTokenError("token has expired")
    nbf = claims.get("nbf")
    if nbf is not None:
        if not isinstance(nbf, (int, float)) or isinstance(nbf, bool):
            raise SessionTokenError("token nbf claim is not a number")
        if nbf > now + CLOCK_TOLERANCE_SECONDS:
            raise SessionTokenError("token is not valid yet")
    iat = claims.get("iat")
    if iat is not None and (not isinstance(iat, (int, float)) or isinstance(iat, bool)):
        raise SessionTokenError("token iat claim is not a number")


def decode_session_token(
    token: str,
    secrets: str | Sequence[str],
    cookie_name: str,
    now: float | None = None,
) -> dict[str, Any]:
    """Decrypt and check an Auth.js session token; return its claims or raise SessionTokenError."""
    secret_list = [secrets] if isinstance(secrets, str) else [s for s in secrets if s]
    if not secret_list or not all(isinstance(s, str) for s in secret_list):
        raise SessionTokenError("no secret configured")
    parts = token.split(".")
    if len(parts) != 5:
        raise SessionTokenError("token is not a compact JWE")
    header = _protected_header(parts[0])
    # Checked here, before any key exists, so no other algorithm can ever be reached.
    if header.get("alg") != "dir":
        raise SessionTokenError("token alg is not 'dir'")
    enc = header.get("enc")
    if not isinstance(enc, str) or enc not in _KEY_SPECS:
        raise SessionTokenError("token enc is not A256CBC-HS512 or A256GCM")
    if "zip" in header or "crit" in header:
        raise SessionTokenError("token uses a header Auth.js never sets (zip/crit)")
    if parts[1]:
        raise SessionTokenError("token carries an encrypted key, which 'dir' forbids")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise SessionTokenError("token kid is not a string")
    key = _select_key(secret_list, cookie_name, enc, kid)
    jwe = JWE(algs=["dir", enc])
    try:
        # The AEAD tag check inside decryption is what rejects a wrong secret or salt.
        jwe.deserialize(token, key=key)
        plaintext = jwe.payload
    except (JWException, ValueError, TypeError):
        raise SessionTokenError("token does not decrypt with the configured secret") from None
    try:
        claims = json.loads(plaintext)
    except (UnicodeDecodeError, ValueError):
        raise SessionTokenError("token payload is not JSON") from None
    if not isinstance(claims, dict):
        raise SessionTokenError("token payload is not a JSON object")
    _check_times(claims, time.time() if now is None else now)
    return claims


def session_cookie_values(cookies: Mapping[str, str], cookie_name: str) -> list[str]:
    """Tokens under one cookie name: the whole cookie, then its chunks `<name>.0`, `.1`, ...
    joined in numeric order (as @auth/core's SessionStore writes them); a browser may hold both."""
    candidates = []
    whole = cookies.get(cookie_name)
    if whole:
        candidates.append(whole)
    prefix = f"{cookie_name}."
    chunks: dict[int, str] = {}
    for name, value in cookies.items():
        if name.startswith(prefix) and _CHUNK_INDEX.fullmatch(name[len(prefix) :]) and value:
            chunks[int(name[len(prefix) :])] = value
    # A missing chunk means a truncated token: not a candidate at all.
    if chunks and sorted(chunks) == list(range(len(chunks))):
        candidates.append("".join(chunks[index] for index in range(len(chunks))))
    return candidates


def read_session_cookie(
    cookies: Mapping[str, str],
    cookie_names: Sequence[str] = DEFAULT_COOKIE_NAMES,
) -> tuple[str, list[str]] | None:
    """(cookie name, candidate tokens) of the session cookie a request carries, or None.

    The first name in `cookie_names` the request carries at all wins (by default
    `__Secure-authjs.session-token` over `authjs.session-token`), even when none of its tokens
    turns out valid: a plain cookie injected over http never overrides a `__Secure-` one.
    """
    for cookie_name in cookie_names:
        candidates = session_cookie_values(cookies, cookie_name)
        if candidates:
            return cookie_name, candidates
    return None


def decode_session_cookie(
    cookies: Mapping[str, str],
    secrets: str | Sequence[str],
    cookie_names: Sequence[str] = DEFAULT_COOKIE_NAMES,
    now: float | None = None,
) -> dict[str, Any]:
    """The claims of the request's session cookie (see read_session_cookie for which one).

    Raises NoSessionCookie without one, SessionTokenError (every candidate's reason) when no
    candidate under the winning name decodes.
    """
    found = read_session_cookie(cookies, cookie_names)
    if found is None:
        raise NoSessionCookie("no session cookie")
    cookie_name, candidates = found
    reasons = []
    for token in candidates:
        try:
            return decode_session_token(token, secrets, cookie_name, now)
        except SessionTokenError as err:
            reasons.append(str(err))
    raise SessionTokenError(f"{cookie_name}: {'; '.join(reasons)}")


def secrets_from_environment(environ: Mapping[str, str]) -> list[str]:
    """AUTH_SECRET and its rotation siblings, in the order @auth/core's setEnvDefaults uses."""
    secrets = [environ.get("AUTH_SECRET", "")]
    for index in (1, 2, 3):
        secrets.insert(0, environ.get(f"AUTH_SECRET_{index}", ""))
    return [secret for secret in secrets if secret]


def _initials(name: str) -> str | None:
    letters = [word[0] for word in name.split() if word[:1].isalnum()]
    return "".join(letters[:2]).upper() or None


def session_identity(claims: Mapping[str, Any]) -> SessionIdentity:
    """The user of a session's claims; shown by name, else email, else `sub`."""
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise SessionTokenError("token has no sub claim")
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    email = claims.get("email") if isinstance(claims.get("email"), str) else None
    picture = claims.get("picture") if isinstance(claims.get("picture"), str) else None
    shown = name or email or sub
    return SessionIdentity(
        username=sub,
        name=shown,
        initials=_initials(shown),
        avatar_url=picture or None,
        email=email or None,
    )
