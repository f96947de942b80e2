"""Auth.js sessions: tokens minted by the real @auth/core 0.41.3, decoded here and by @auth/core."""

from __future__ import annotations

import base64
import json
import random
import re
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from tornado.httpclient import HTTPResponse

from jupyter_popebot_code.auth import authjs_session
from jupyter_popebot_code.auth.authjs import AuthJSIdentityProvider
from jupyter_popebot_code.auth.authjs_session import (
    SECURE_SESSION_COOKIE_NAME,
    SESSION_COOKIE_NAME,
    NoSessionCookie,
    SessionIdentity,
    SessionTokenError,
    decode_session_cookie,
    decode_session_token,
    read_session_cookie,
    session_cookie_values,
    session_identity,
)
from jupyter_popebot_code.errors import AuthJSConfigError

from .terminal_client import refusal, relay_fetch, terminal

MINT_DIR = Path(__file__).resolve().parent / "authjs"
PROVIDER = "jupyter_popebot_code.auth.authjs.AuthJSIdentityProvider"
SECRET = secrets.token_urlsafe(32)
OLD_SECRET = secrets.token_urlsafe(32)
WRONG_SECRET = secrets.token_urlsafe(32)
PLAIN = SESSION_COOKIE_NAME
SECURE = SECURE_SESSION_COOKIE_NAME
ALICE = {
    "sub": "3f2b8c1e-alice",
    "name": "Alice Example",
    "email": "alice@example.com",
    "picture": "https://example.com/alice.png",
}
BOB = {"sub": "9d41a7c0-bob", "email": "bob@example.com"}
NOT_BEFORE = int(time.time()) + 3600
TOLERANCE = 15  # seconds, as @auth/core's decode() allows


class Minter:
    """Runs tests/authjs/mint.mjs: @auth/core's encode/decode and SessionStore, in Node."""

    def __init__(self, node: str) -> None:
        self.node = node

    def run(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        done = subprocess.run(
            [self.node, str(MINT_DIR / "mint.mjs")],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            cwd=MINT_DIR,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        results: list[dict[str, Any]] = json.loads(done.stdout)
        return results


@pytest.fixture(scope="session")
def minter() -> Minter:
    """Node + @auth/core from package-lock.json; missing tools are a failure, never a skip."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("Node.js and npm are needed to mint real Auth.js tokens.")
    if not (MINT_DIR / "node_modules" / "@auth" / "core").is_dir():
        subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=MINT_DIR, check=True)
    return Minter(node)


def _encode(claims: Mapping[str, Any], secret: Any, salt: str, max_age: int = 3600) -> dict:
    return {"op": "encode", "claims": claims, "secret": secret, "salt": salt, "maxAge": max_age}


def _craft(claims: Mapping[str, Any], secret: str, enc: str, kid: bool) -> dict:
    return {
        "op": "craft",
        "claims": claims,
        "secret": secret,
        "salt": PLAIN,
        "enc": enc,
        "kid": kid,
    }


@pytest.fixture(scope="session")
def minted(minter: Minter) -> dict[str, dict[str, Any]]:
    """Every token the tests use, minted by @auth/core in one Node run."""
    requests = {
        "alice": _encode(ALICE, SECRET, PLAIN),
        "bob": _encode(BOB, SECRET, PLAIN),
        "alice_secure": _encode(ALICE, SECRET, SECURE),
        "bob_secure": _encode(BOB, SECRET, SECURE),
        "expired": _encode(ALICE, SECRET, PLAIN, max_age=-3600),
        "just_expired": _encode(ALICE, SECRET, PLAIN, max_age=-5),
        "long_expired": _encode(ALICE, SECRET, PLAIN, max_age=-20),
        "not_yet_valid": _encode({**ALICE, "nbf": NOT_BEFORE}, SECRET, PLAIN, max_age=86400),
        # A big session (many roles): @auth/core's SessionStore splits it into chunks.
        "big": _encode({**ALICE, "roles": [f"role-{i:05d}" for i in range(600)]}, SECRET, PLAIN),
        "big_secure": _encode({**BOB, "roles": ["r"] * 2000}, SECRET, SECURE),
        "huge": _encode({**ALICE, "blob": "x" * 36000}, SECRET, PLAIN),
        "old_secret": _encode(ALICE, OLD_SECRET, PLAIN),
        "rotated_pair": _encode(ALICE, [SECRET, OLD_SECRET], PLAIN),
        # @auth/core's encode() only emits A256CBC-HS512 with a kid; its decode() also accepts
        # A256GCM and tokens without kid. These are made with @auth/core's own jose + hkdf and
        # accepted by @auth/core's decode() before use.
        "gcm": _craft(ALICE, SECRET, "A256GCM", kid=True),
        "gcm_no_kid": _craft(ALICE, SECRET, "A256GCM", kid=False),
        "old_no_kid": _craft(ALICE, OLD_SECRET, "A256CBC-HS512", kid=False),
    }
    results = minter.run(list(requests.values()))
    return dict(zip(requests, results, strict=True))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return header


def _with_header(token: str, **changes: Any) -> str:
    header = {**_header(token), **changes}
    header = {name: value for name, value in header.items() if value is not None}
    return ".".join([_b64url(json.dumps(header).encode()), *token.split(".")[1:]])


def _flip(token: str, part: int) -> str:
    parts = token.split(".")
    middle = len(parts[part]) // 2
    char = parts[part][middle]
    parts[part] = parts[part][:middle] + ("A" if char != "A" else "B") + parts[part][middle + 1 :]
    return ".".join(parts)


def _with_part(token: str, part: int, value: str) -> str:
    parts = token.split(".")
    parts[part] = value
    return ".".join(parts)


@dataclass(frozen=True)
class Case:
    token: str  # key in `minted`
    make: Callable[[str], str]
    secrets: tuple[str, ...]
    cookie_name: str
    sub: str | None  # expected subject, None: rejected
    reason: str = ""  # part of the rejection reason


def _same(token: str) -> str:
    return token


def _header_edit(**changes: Any) -> Callable[[str], str]:
    return lambda token: _with_header(token, **changes)


def _new_kid(token: str) -> str:
    # A different first character: a fixed one would leave one kid in 64 unchanged.
    kid = _header(token)["kid"]
    return _with_header(token, kid=("y" if kid[0] == "x" else "x") + kid[1:])


NEW, OLD, WRONG = (SECRET,), (OLD_SECRET,), (WRONG_SECRET,)
NEW_OLD, OLD_NEW = (SECRET, OLD_SECRET), (OLD_SECRET, SECRET)
A, B = ALICE["sub"], BOB["sub"]
CASES: dict[str, Case] = {
    "valid": Case("alice", _same, NEW, PLAIN, A),
    "other_user": Case("bob", _same, NEW, PLAIN, B),
    "expired": Case("expired", _same, NEW, PLAIN, None, "expired"),
    "not_yet_valid": Case("not_yet_valid", _same, NEW, PLAIN, None, "not valid yet"),
    "wrong_secret": Case("alice", _same, WRONG, PLAIN, None, "kid"),
    "wrong_cookie_name": Case("alice", _same, NEW, SECURE, None, "kid"),
    "secure_cookie": Case("alice_secure", _same, NEW, SECURE, A),
    "secure_token_as_plain": Case("alice_secure", _same, NEW, PLAIN, None, "kid"),
    "tampered_header": Case("alice", _header_edit(typ="JWT"), NEW, PLAIN, None, "decrypt"),
    "tampered_kid": Case("alice", _new_kid, NEW, PLAIN, None, "kid"),
    "tampered_iv": Case("alice", lambda t: _flip(t, 2), NEW, PLAIN, None, "decrypt"),
    "tampered_ciphertext": Case("alice", lambda t: _flip(t, 3), NEW, PLAIN, None, "decrypt"),
    "tampered_tag": Case("alice", lambda t: _flip(t, 4), NEW, PLAIN, None, "decrypt"),
    "truncated": Case("alice", lambda t: t[:-12], NEW, PLAIN, None, "decrypt"),
    "truncated_parts": Case("alice", lambda t: t.rsplit(".", 1)[0], NEW, PLAIN, None, "compact"),
    "not_base64": Case("alice", lambda t: _with_part(t, 0, "e30*"), NEW, PLAIN, None, "base64"),
    "alg_a256kw": Case("alice", _header_edit(alg="A256KW"), NEW, PLAIN, None, "alg"),
    "alg_none": Case("alice", _header_edit(alg="none"), NEW, PLAIN, None, "alg"),
    "alg_missing": Case("alice", _header_edit(alg=None), NEW, PLAIN, None, "alg"),
    "enc_a128": Case("alice", _header_edit(enc="A128CBC-HS256"), NEW, PLAIN, None, "enc"),
    "enc_relabelled": Case("alice", _header_edit(enc="A256GCM"), NEW, PLAIN, None, "kid"),
    "zip": Case("alice", _header_edit(zip="DEF"), NEW, PLAIN, None, "zip"),
    "encrypted_key": Case("alice", lambda t: _with_part(t, 1, "AAAA"), NEW, PLAIN, None, "key"),
    "a256gcm": Case("gcm", _same, NEW, PLAIN, A),
    "a256gcm_no_kid": Case("gcm_no_kid", _same, NEW, PLAIN, A),
    "no_kid_wrong_secret": Case("gcm_no_kid", _same, WRONG, PLAIN, None, "decrypt"),
    "rotated_old_second": Case("old_secret", _same, NEW_OLD, PLAIN, A),
    "rotated_old_removed": Case("old_secret", _same, NEW, PLAIN, None, "kid"),
    "rotated_encode_uses_first": Case("rotated_pair", _same, OLD_NEW, PLAIN, A),
    "rotated_first_secret_only": Case("rotated_pair", _same, OLD, PLAIN, None, "kid"),
    "no_kid_first_secret_only": Case("old_no_kid", _same, NEW_OLD, PLAIN, None, "decrypt"),
    "no_kid_first_secret": Case("old_no_kid", _same, OLD_NEW, PLAIN, A),
    "big_token": Case("big", _same, NEW, PLAIN, A),
}


@pytest.fixture(scope="session")
def authjs_verdicts(minter: Minter, minted: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """@auth/core's own decode() verdict on every case, in one Node run."""
    requests = [
        {
            "op": "decode",
            "token": case.make(minted[case.token]["token"]),
            "secret": list(case.secrets),
            "salt": case.cookie_name,
        }
        for case in CASES.values()
    ]
    return dict(zip(CASES, minter.run(requests), strict=True))


@pytest.mark.parametrize("name", list(CASES))
def test_decode_table_agrees_with_authjs(
    name: str, minted: dict[str, dict[str, Any]], authjs_verdicts: dict[str, dict[str, Any]]
) -> None:
    case = CASES[name]
    token = case.make(minted[case.token]["token"])
    verdict = authjs_verdicts[name]
    if case.sub is None:
        with pytest.raises(SessionTokenError, match=case.reason) as caught:
            decode_session_token(token, case.secrets, case.cookie_name)
        for secret in (SECRET, OLD_SECRET, WRONG_SECRET):
            assert secret not in str(caught.value)
        assert not verdict["ok"], f"@auth/core accepted what we refuse: {verdict}"
    else:
        claims = decode_session_token(token, case.secrets, case.cookie_name)
        assert claims["sub"] == case.sub
        assert verdict["ok"], f"@auth/core refused what we accept: {verdict}"
        assert verdict["payload"] == claims


def test_decoded_claims_are_the_session(minted: dict[str, dict[str, Any]]) -> None:
    alice = minted["alice"]
    claims = decode_session_token(alice["token"], [SECRET], PLAIN)
    assert claims == alice["payload"]
    assert {k: claims[k] for k in ALICE} == ALICE
    assert {"iat", "exp", "jti"} <= claims.keys()
    header = _header(alice["token"])
    assert (sorted(header), header["alg"], header["enc"]) == (
        ["alg", "enc", "kid"],
        "dir",
        "A256CBC-HS512",
    )


def test_expiry_tolerance_is_15_seconds(minted: dict[str, dict[str, Any]]) -> None:
    token = minted["alice"]["token"]
    exp = minted["alice"]["payload"]["exp"]
    assert decode_session_token(token, [SECRET], PLAIN, now=exp - 1)["sub"] == ALICE["sub"]
    assert decode_session_token(token, [SECRET], PLAIN, now=exp + TOLERANCE - 0.5)
    with pytest.raises(SessionTokenError, match="expired"):
        decode_session_token(token, [SECRET], PLAIN, now=exp + TOLERANCE)
    with pytest.raises(SessionTokenError, match="expired"):
        decode_session_token(token, [SECRET], PLAIN, now=exp + 3600)


def test_not_before_tolerance_is_15_seconds(minted: dict[str, dict[str, Any]]) -> None:
    token = minted["not_yet_valid"]["token"]
    claims = decode_session_token(token, [SECRET], PLAIN, now=NOT_BEFORE - TOLERANCE)
    assert claims["nbf"] == NOT_BEFORE
    with pytest.raises(SessionTokenError, match="not valid yet"):
        decode_session_token(token, [SECRET], PLAIN, now=NOT_BEFORE - TOLERANCE - 0.5)
    assert decode_session_token(token, [SECRET], PLAIN, now=NOT_BEFORE + 60)["sub"] == ALICE["sub"]


def test_authjs_applies_the_same_tolerance(minted: dict[str, dict[str, Any]]) -> None:
    """@auth/core read back a token 5 s past exp and refused one 20 s past, as we do."""
    assert minted["just_expired"]["payload"] is not None
    assert minted["long_expired"]["payload"] is None
    exp = minted["just_expired"]["payload"]["exp"]
    token = minted["just_expired"]["token"]
    assert decode_session_token(token, [SECRET], PLAIN, now=exp + 5)["sub"] == ALICE["sub"]
    with pytest.raises(SessionTokenError, match="expired"):
        decode_session_token(minted["long_expired"]["token"], [SECRET], PLAIN)


def test_secret_may_be_a_single_string(minted: dict[str, dict[str, Any]]) -> None:
    assert decode_session_token(minted["alice"]["token"], SECRET, PLAIN)["sub"] == ALICE["sub"]
    with pytest.raises(SessionTokenError, match="no secret"):
        decode_session_token(minted["alice"]["token"], [], PLAIN)
    with pytest.raises(SessionTokenError, match="no secret"):
        decode_session_token(minted["alice"]["token"], [""], PLAIN)


def _cookie_jar(cookies: list[dict[str, str]]) -> dict[str, str]:
    return {cookie["name"]: cookie["value"] for cookie in cookies}


def test_chunked_cookie_from_session_store(minted: dict[str, dict[str, Any]]) -> None:
    big = minted["big"]
    names = [cookie["name"] for cookie in big["cookies"]]
    assert len(names) >= 2
    assert names == [f"{PLAIN}.{i}" for i in range(len(names))]
    jar = _cookie_jar(big["cookies"])
    assert read_session_cookie(jar) == (PLAIN, [big["token"]])
    name, tokens = read_session_cookie(dict(reversed(list(jar.items())))) or ("", [""])
    assert decode_session_token(tokens[0], [SECRET], name)["roles"][-1] == "role-00599"


def test_chunks_are_ordered_by_number(minted: dict[str, dict[str, Any]]) -> None:
    huge = minted["huge"]
    assert len(huge["cookies"]) > 10  # .10 sorts before .2 as text
    items = list(_cookie_jar(huge["cookies"]).items())
    random.Random(7).shuffle(items)
    jar = {"other": "1", **dict(items), f"{PLAIN}x.0": "junk"}
    assert read_session_cookie(jar) == (PLAIN, [huge["token"]])


def test_missing_chunk_is_no_session(minted: dict[str, dict[str, Any]]) -> None:
    jar = _cookie_jar(minted["big"]["cookies"])
    del jar[f"{PLAIN}.1"]
    assert read_session_cookie(jar) is None


def test_secure_cookie_wins_over_plain(minted: dict[str, dict[str, Any]]) -> None:
    jar = {PLAIN: minted["alice"]["token"], SECURE: minted["bob_secure"]["token"]}
    assert read_session_cookie(jar) == (SECURE, [minted["bob_secure"]["token"]])
    chunked_secure = _cookie_jar(minted["big_secure"]["cookies"])
    assert read_session_cookie({PLAIN: "a.b.c.d.e", **chunked_secure}) == (
        SECURE,
        [minted["big_secure"]["token"]],
    )
    assert read_session_cookie({PLAIN: minted["alice"]["token"]}) == (
        PLAIN,
        [minted["alice"]["token"]],
    )
    assert read_session_cookie({"next-auth.session-token": "x"}) is None


def test_whole_cookie_and_chunks_are_both_candidates(minted: dict[str, dict[str, Any]]) -> None:
    jar = {PLAIN: minted["alice"]["token"], **_cookie_jar(minted["big"]["cookies"])}
    assert session_cookie_values(jar, PLAIN) == [minted["alice"]["token"], minted["big"]["token"]]


def test_every_candidate_under_the_first_name_present_is_tried(
    minted: dict[str, dict[str, Any]],
) -> None:
    expired, big = minted["expired"]["token"], minted["big"]["token"]
    jar = {PLAIN: expired, **_cookie_jar(minted["big"]["cookies"])}
    assert read_session_cookie(jar) == (PLAIN, [expired, big])
    assert decode_session_cookie(jar, [SECRET])["roles"][-1] == "role-00599"
    # A bad __Secure- cookie is not rescued by a good plain one, unless only the plain is accepted.
    both = {SECURE: "a.b.c.d.e", PLAIN: minted["alice"]["token"]}
    with pytest.raises(SessionTokenError, match=re.escape(f"{SECURE}: token is not")) as caught:
        decode_session_cookie(both, [SECRET])
    assert not isinstance(caught.value, NoSessionCookie)
    assert decode_session_cookie(both, [SECRET], [PLAIN])["sub"] == ALICE["sub"]
    with pytest.raises(NoSessionCookie):
        decode_session_cookie({"next-auth.session-token": "x", SECURE: ""}, [SECRET])


def test_session_identity_is_plain_data(minted: dict[str, dict[str, Any]]) -> None:
    claims = decode_session_token(minted["alice"]["token"], [SECRET], PLAIN)
    assert session_identity(claims) == SessionIdentity(
        username=ALICE["sub"],
        name=ALICE["name"],
        initials="AE",
        avatar_url=ALICE["picture"],
        email=ALICE["email"],
    )
    bob = session_identity({"sub": BOB["sub"], "email": BOB["email"], "picture": 7})
    assert bob == SessionIdentity(BOB["sub"], BOB["email"], "B", None, BOB["email"])
    with pytest.raises(SessionTokenError, match="sub"):
        session_identity({"name": "Nobody", "sub": ""})


_STANDALONE = """
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("authjs_session_alone", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
request = json.load(sys.stdin)
claims = module.decode_session_cookie(request["cookies"], request["secrets"])
roots = {"jupyter_popebot_code", "jupyter_server", "jupyter_core", "tornado", "traitlets"}
print(json.dumps({"sub": claims["sub"], "loaded": sorted(set(sys.modules) & roots)}))
"""


def test_session_decoding_needs_no_jupyter(minted: dict[str, dict[str, Any]]) -> None:
    """authjs_session.py loaded on its own (outside the package) decodes a real session cookie
    without importing Jupyter, Tornado or traitlets: any other service can reuse it."""
    request = {"cookies": _cookie_jar(minted["big_secure"]["cookies"]), "secrets": [SECRET]}
    done = subprocess.run(
        [sys.executable, "-c", _STANDALONE, authjs_session.__file__],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"sub": BOB["sub"], "loaded": []}


def test_secret_defaults_follow_authjs_env_order(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AUTH_SECRET", "AUTH_SECRET_1", "AUTH_SECRET_2", "AUTH_SECRET_3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AUTH_SECRET", "current")
    monkeypatch.setenv("AUTH_SECRET_1", "one")
    monkeypatch.setenv("AUTH_SECRET_3", "three")
    provider = AuthJSIdentityProvider()
    # @auth/core's setEnvDefaults: push AUTH_SECRET, then unshift AUTH_SECRET_1, _2, _3.
    assert provider.secret == ["three", "one", "current"]
    assert "current" not in repr(provider)
    assert provider.token == ""


# --- through a running jupyter-server -------------------------------------------------------


def _cookie_header(**cookies: str) -> dict[str, str]:
    return {"Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


def _session(token: str, name: str = PLAIN) -> dict[str, str]:
    return {"Cookie": f"{name}={token}"}


async def _me(jp_fetch: Callable[..., Any], headers: dict[str, str]) -> tuple[int, Any]:
    response: HTTPResponse = await jp_fetch("api", "me", headers=headers, raise_error=False)
    return response.code, json.loads(response.body) if response.code == 200 else None


LOGIN_URL = "https://bot.example.com/login"


class TestServer:
    """jupyter-server with the Auth.js identity provider (and JupyterLab), no workspaces."""

    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "identity_provider_class": PROVIDER,
                "jpserver_extensions": {"jupyter_popebot_code": False, "jupyterlab": True},
            },
            # A token configured anyway must not be accepted, nor shown to the browser.
            "IdentityProvider": {"token": "configured-jupyter-token"},
            "AuthJSIdentityProvider": {"secret": [SECRET, OLD_SECRET], "login_url": LOGIN_URL},
        }

    async def test_session_user_is_the_identity(
        self, jp_fetch: Callable[..., Any], minted: dict[str, dict[str, Any]]
    ) -> None:
        code, me = await _me(jp_fetch, _session(minted["alice"]["token"]))
        assert code == 200
        assert me["identity"]["username"] == ALICE["sub"]
        assert me["identity"]["name"] == ALICE["name"]
        assert me["identity"]["display_name"] == ALICE["name"]
        assert me["identity"]["avatar_url"] == ALICE["picture"]
        code, me = await _me(jp_fetch, _session(minted["bob"]["token"]))
        assert code == 200
        assert me["identity"]["username"] == BOB["sub"]
        assert me["identity"]["name"] == BOB["email"]

    @pytest.mark.parametrize(
        ("label", "cookie_name"),
        [
            ("secure", SECURE),
            ("old_secret", PLAIN),
            ("gcm", PLAIN),
            ("gcm_no_kid", PLAIN),
        ],
    )
    async def test_accepted_sessions(
        self,
        jp_fetch: Callable[..., Any],
        minted: dict[str, dict[str, Any]],
        label: str,
        cookie_name: str,
    ) -> None:
        token = minted["alice_secure" if label == "secure" else label]["token"]
        code, me = await _me(jp_fetch, _session(token, cookie_name))
        assert code == 200
        assert me["identity"]["username"] == ALICE["sub"]

    async def test_chunked_session(
        self, jp_fetch: Callable[..., Any], minted: dict[str, dict[str, Any]]
    ) -> None:
        jar = _cookie_jar(minted["big_secure"]["cookies"])
        code, me = await _me(jp_fetch, _cookie_header(**jar))
        assert code == 200
        assert me["identity"]["username"] == BOB["sub"]

    @pytest.mark.parametrize(
        "headers",
        [
            pytest.param({}, id="no_cookie"),
            pytest.param({"Authorization": "token configured-jupyter-token"}, id="jupyter_token"),
            pytest.param({"Cookie": f"{PLAIN}=garbage"}, id="garbage"),
            pytest.param({"Cookie": f"{SECURE}=a.b.c.d.e"}, id="garbage_secure"),
        ],
    )
    async def test_rejected_without_a_valid_session(
        self, jp_fetch: Callable[..., Any], headers: dict[str, str]
    ) -> None:
        code, _ = await _me(jp_fetch, headers)
        assert code == 403

    @pytest.mark.parametrize(
        ("label", "cookie_name"),
        [
            ("expired", PLAIN),
            ("alice", SECURE),  # minted for the plain name: the other key
            ("old_no_kid", PLAIN),  # no kid: only the first secret is tried
        ],
    )
    async def test_rejected_sessions(
        self,
        jp_fetch: Callable[..., Any],
        minted: dict[str, dict[str, Any]],
        label: str,
        cookie_name: str,
    ) -> None:
        code, _ = await _me(jp_fetch, _session(minted[label]["token"], cookie_name))
        assert code == 403

    async def test_secure_cookie_decides(
        self, jp_fetch: Callable[..., Any], minted: dict[str, dict[str, Any]]
    ) -> None:
        both = {PLAIN: minted["alice"]["token"], SECURE: minted["bob_secure"]["token"]}
        code, me = await _me(jp_fetch, _cookie_header(**both))
        assert (code, me["identity"]["username"]) == (200, BOB["sub"])
        # An injected plain cookie does not rescue a bad __Secure- one.
        bad_secure = {PLAIN: minted["alice"]["token"], SECURE: minted["expired"]["token"]}
        code, _ = await _me(jp_fetch, _cookie_header(**bad_secure))
        assert code == 403

    async def test_token_is_not_in_jupyterlab_page(
        self,
        jp_fetch: Callable[..., Any],
        jp_serverapp: Any,
        minted: dict[str, dict[str, Any]],
    ) -> None:
        assert jp_serverapp.identity_provider.token == ""
        response = await jp_fetch("lab", headers=_session(minted["alice"]["token"]))
        assert response.code == 200
        found = re.search(
            rb'<script id="jupyter-config-data" type="application/json">(.*?)</script>',
            response.body,
            re.DOTALL,
        )
        assert found is not None
        assert json.loads(found.group(1))["token"] == ""

    async def test_browser_without_session_goes_to_the_app_login(
        self, jp_fetch: Callable[..., Any], jp_base_url: str, minted: dict[str, dict[str, Any]]
    ) -> None:
        response = await jp_fetch("lab", follow_redirects=False, raise_error=False)
        assert response.code == 302
        login = urlsplit(response.headers["Location"])
        assert login.path == f"{jp_base_url}login"
        next_url = parse_qs(login.query)["next"][0]
        assert next_url == f"{jp_base_url}lab"
        response = await jp_fetch(
            "login", params={"next": next_url}, follow_redirects=False, raise_error=False
        )
        assert response.code == 302
        app_login = urlsplit(response.headers["Location"])
        assert f"{app_login.scheme}://{app_login.netloc}{app_login.path}" == LOGIN_URL
        assert parse_qs(app_login.query)["callbackUrl"] == [next_url]
        # Signed in: /login sends the browser on, never to another host.
        for asked, sent in ((next_url, next_url), ("https://evil.example/", jp_base_url)):
            response = await jp_fetch(
                "login",
                params={"next": asked},
                headers=_session(minted["alice"]["token"]),
                follow_redirects=False,
                raise_error=False,
            )
            assert (response.code, response.headers["Location"]) == (302, sent)

    async def test_xsrf_still_guards_writes(
        self, jp_fetch: Callable[..., Any], minted: dict[str, dict[str, Any]]
    ) -> None:
        session = f"{PLAIN}={minted['alice']['token']}"
        body = json.dumps({"type": "file", "ext": ".txt"})
        response = await jp_fetch(
            "api",
            "contents",
            method="POST",
            body=body,
            headers={"Cookie": session},
            raise_error=False,
        )
        assert response.code == 403
        xsrf = secrets.token_hex(16)
        response = await jp_fetch(
            "api",
            "contents",
            method="POST",
            body=body,
            headers={"Cookie": f"{session}; _xsrf={xsrf}", "X-XSRFToken": xsrf},
            raise_error=False,
        )
        assert response.code == 201

    async def test_refuses_to_start_without_a_secret(
        self,
        jp_configurable_serverapp: Callable[..., Any],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for name in ("AUTH_SECRET", "AUTH_SECRET_1", "AUTH_SECRET_2", "AUTH_SECRET_3"):
            monkeypatch.delenv(name, raising=False)
        config = {
            "ServerApp": {
                "identity_provider_class": PROVIDER,
                "jpserver_extensions": {"jupyter_popebot_code": False},
            }
        }
        with pytest.raises(AuthJSConfigError, match="AUTH_SECRET"):
            jp_configurable_serverapp(config=config)


class TestTokenAuth:
    """allow_token_auth: Jupyter's token also works, beside (never instead of) sessions."""

    @pytest.fixture
    def jp_server_config(self) -> dict[str, Any]:
        return {
            "ServerApp": {
                "identity_provider_class": PROVIDER,
                "jpserver_extensions": {"jupyter_popebot_code": False},
            },
            "IdentityProvider": {"token": "script-token"},
            "AuthJSIdentityProvider": {"secret": [SECRET], "allow_token_auth": True},
        }

    async def test_token_user_and_session_user(
        self, jp_fetch: Callable[..., Any], minted: dict[str, dict[str, Any]]
    ) -> None:
        token_header = {"Authorization": "token script-token"}
        code, me = await _me(jp_fetch, token_header)
        assert (code, me["identity"]["username"]) == (200, "jupyter-token")
        code, me = await _me(jp_fetch, {**token_header, **_session(minted["bob"]["token"])})
        assert (code, me["identity"]["username"]) == (200, BOB["sub"])
        code, _ = await _me(jp_fetch, {"Authorization": "token wrong"})
        assert code == 403


# --- with the workspaces extension (the lead's REST API; needs the workspace image) ----------


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """conftest's jp_server_config, with Auth.js sessions as the identity."""
    return {
        "ServerApp": {"identity_provider_class": PROVIDER},
        "AuthJSIdentityProvider": {"secret": [SECRET]},
    }


async def test_each_session_user_sees_only_their_workspaces(
    jp_fetch: Callable[..., Any], service: Any, minted: dict[str, dict[str, Any]]
) -> None:
    xsrf = secrets.token_hex(16)

    def as_user(label: str) -> dict[str, str]:
        cookie = f"{PLAIN}={minted[label]['token']}; _xsrf={xsrf}"
        return {"Cookie": cookie, "X-XSRFToken": xsrf, "Content-Type": "application/json"}

    async def call(label: str, method: str, *path: str, body: Any = None) -> tuple[int, Any]:
        response: HTTPResponse = await jp_fetch(
            "api",
            "code",
            "workspaces",
            *path,
            method=method,
            headers=as_user(label),
            body=None if body is None else json.dumps(body),
            raise_error=False,
        )
        return response.code, json.loads(response.body) if response.body else None

    code, alices = await call("alice", "POST", body={"name": "alice-ws", "repo": "", "branch": ""})
    assert code == 201, alices
    code, bobs = await call("bob", "POST", body={"name": "bob-ws", "repo": "", "branch": ""})
    assert code == 201, bobs
    for label, own, other in (("alice", alices, bobs), ("bob", bobs, alices)):
        code, listed = await call(label, "GET")
        assert code == 200
        assert [ws["id"] for ws in listed["workspaces"]] == [own["id"]]
        code, _ = await call(label, "GET", other["id"])
        assert code in (403, 404)
    response = await jp_fetch("api", "code", "workspaces", raise_error=False)
    assert response.code == 403


async def test_the_relay_takes_the_same_session_and_only_for_the_owner(
    jp_fetch: Callable[..., Any],
    jp_ws_fetch: Callable[..., Any],
    service: Any,
    minted: dict[str, dict[str, Any]],
) -> None:
    xsrf = secrets.token_hex(16)
    created: HTTPResponse = await jp_fetch(
        "api",
        "code",
        "workspaces",
        method="POST",
        headers={
            "Cookie": f"{PLAIN}={minted['alice']['token']}; _xsrf={xsrf}",
            "X-XSRFToken": xsrf,
        },
        body=json.dumps({"name": "alice-terminal"}),
    )
    workspace_id = json.loads(created.body)["id"]

    alice = {"Cookie": f"{PLAIN}={minted['alice']['token']}"}
    async with terminal(jp_ws_fetch, workspace_id, headers=alice) as term:
        term.type("echo session-$((6*7))\r")
        assert "session-42" in await term.read_until("session-42")

    bob = {"Cookie": f"{PLAIN}={minted['bob']['token']}"}
    assert (await refusal(relay_fetch(jp_ws_fetch, workspace_id, **bob)))[0] == 403
    # Jupyter's token is no credential here (allow_token_auth is off): no session, no identity.
    assert (await refusal(relay_fetch(jp_ws_fetch, workspace_id)))[0] == 401
