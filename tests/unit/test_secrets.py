"""Personal secrets in the fast tier: validation, encryption at rest, the REST API and delivery.

The server's containers live in memory (InMemoryContainerManager records what would be written
into each); delivery against the real engine and image is in tests/test_personal_secrets.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tornado.httpclient import HTTPResponse

from jupyter_popebot_code.core.secret_crypto import SecretCipher, load_key_file, new_key, parse_keys
from jupyter_popebot_code.core.secret_delivery import render_payload
from jupyter_popebot_code.core.secrets import PersonalSecrets, Secret, SecretStore
from jupyter_popebot_code.errors import SecretKeyError, UnreadableSecret

from ..conftest import USER_HEADER, Api, HeaderIdentityProvider, wait_for
from ..memory_containers import InMemoryContainerManager, parse_secret_payload

VALUE = "ghp_fastTierValue0123456789abcdefXYZ"
TWO_USERS = {"ServerApp": {"identity_provider_class": HeaderIdentityProvider}}


class SecretsApi:
    """api/code/secrets through jp_fetch, as one user; answers (status, JSON)."""

    def __init__(self, fetch: Callable[..., Any], user: str | None = None) -> None:
        self._fetch = fetch
        self.user = user

    async def call(
        self, method: str, name: str = "", body: Any = None, raw: bytes | None = None
    ) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json"}
        if self.user:
            headers[USER_HEADER] = self.user
        if raw is None and body is not None:
            raw = json.dumps(body).encode()
        if raw is None and method == "PUT":
            raw = b""
        parts = ["api", "code", "secrets", *filter(None, [name])]
        response: HTTPResponse = await self._fetch(
            *parts, method=method, body=raw, headers=headers, raise_error=False
        )
        text = response.body.decode() if response.body else ""
        assert VALUE not in text, "a REST answer holds a secret's value"
        return response.code, json.loads(text) if text else None


@pytest.fixture
def secrets_api(jp_fetch: Callable[..., Any], service: Any) -> SecretsApi:
    return SecretsApi(jp_fetch)


@pytest.mark.parametrize(
    ("name", "body", "field"),
    [
        ("lower", {"value": "x"}, "name"),
        ("1ABC", {"value": "x"}, "name"),
        ("A-B", {"value": "x"}, "name"),
        ("A" * 65, {"value": "x"}, "name"),
        ("PATH", {"value": "x"}, "name"),
        ("HOME", {"value": "x"}, "name"),
        ("TTYD_CREDENTIAL", {"value": "x"}, "name"),
        ("LD_PRELOAD", {"value": "x"}, "name"),
        ("GIT_CONFIG_GLOBAL", {"value": "x"}, "name"),
        ("TOKEN", {}, "value"),
        ("TOKEN", {"value": ""}, "value"),
        ("TOKEN", {"value": 42}, "value"),
        ("TOKEN", {"value": "a\u0000b"}, "value"),
        ("TOKEN", {"value": "x" * (16 * 1024 + 1)}, "value"),
        ("TOKEN", {"value": "a\nb", "git_host": "github.com"}, "value"),
        ("TOKEN", {"value": "a\tb", "git_host": "github.com"}, "value"),
        ("TOKEN", {"value": "x", "git_host": "https://github.com"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": "github.com/org"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": "user@github.com"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": "git hub.com"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": "host:99999"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": "[::zz]"}, "git_host"),
        ("TOKEN", {"value": "x", "git_host": 5}, "git_host"),
        ("TOKEN", {"value": "x", "owner": "bob"}, "owner"),
    ],
)  # fmt: skip
async def test_bad_input_is_a_400_naming_the_field(
    secrets_api: SecretsApi, name: str, body: dict[str, Any], field: str
) -> None:
    code, reply = await secrets_api.call("PUT", name, body=body)
    assert code == 400, reply
    assert (reply["field"], bool(reply["message"])) == (field, True)
    assert await secrets_api.call("GET") == (200, {"secrets": []})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("github.com", "github.com"),
        ("GitLab.Example.COM", "gitlab.example.com"),
        ("git.internal:8443", "git.internal:8443"),
        ("10.1.2.3:3000", "10.1.2.3:3000"),
        ("[::1]:8443", "[::1]:8443"),
        (None, None),
        ("", None),
    ],
)
async def test_git_hosts_are_accepted_as_git_names_them(
    secrets_api: SecretsApi, given: str | None, stored: str | None
) -> None:
    code, reply = await secrets_api.call("PUT", "TOKEN", body={"value": VALUE, "git_host": given})
    assert (code, reply["git_host"]) == (201, stored)


async def test_add_replace_list_and_delete(secrets_api: SecretsApi) -> None:
    code, created = await secrets_api.call("PUT", "GH_TOKEN", body={"value": VALUE})
    assert code == 201
    assert set(created) == {"name", "git_host", "updated_at"}
    code, replaced = await secrets_api.call(
        "PUT", "GH_TOKEN", body={"value": VALUE + "2", "git_host": "github.com"}
    )
    assert (code, replaced["git_host"]) == (200, "github.com")
    await secrets_api.call("PUT", "ANTHROPIC_KEY", body={"value": "a'b\"c$d\n`e`"})
    code, listed = await secrets_api.call("GET")
    assert code == 200
    assert [(s["name"], s["git_host"]) for s in listed["secrets"]] == [
        ("ANTHROPIC_KEY", None),
        ("GH_TOKEN", "github.com"),
    ]
    assert all(set(s) == {"name", "git_host", "updated_at"} for s in listed["secrets"])
    assert await secrets_api.call("DELETE", "GH_TOKEN") == (204, None)
    code, reply = await secrets_api.call("DELETE", "GH_TOKEN")
    assert (code, reply["field"]) == (404, "name")
    assert [s["name"] for s in (await secrets_api.call("GET"))[1]["secrets"]] == ["ANTHROPIC_KEY"]


@pytest.mark.parametrize(
    "server_settings", [{**TWO_USERS, "PersonalSecrets": {"max_per_owner": 2}}]
)
async def test_each_owner_sees_only_their_own_and_has_a_limit(
    jp_fetch: Callable[..., Any], service: Any
) -> None:
    alice, bob = SecretsApi(jp_fetch, "alice"), SecretsApi(jp_fetch, "bob")
    assert (await alice.call("PUT", "ONE", body={"value": VALUE}))[0] == 201
    assert (await alice.call("PUT", "TWO", body={"value": VALUE}))[0] == 201
    code, reply = await alice.call("PUT", "THREE", body={"value": VALUE})
    assert code == 403
    assert "2" in reply["message"]
    assert (await alice.call("PUT", "TWO", body={"value": "replacing is fine"}))[0] == 200
    assert await bob.call("GET") == (200, {"secrets": []})
    assert (await bob.call("DELETE", "ONE"))[0] == 404
    assert (await bob.call("PUT", "ONE", body={"value": "bob's"}))[0] == 201
    names = [s["name"] for s in (await alice.call("GET"))[1]["secrets"]]
    assert names == ["ONE", "TWO"]


async def test_values_are_encrypted_in_the_store_and_the_key_file_is_private(
    secrets_api: SecretsApi, app: Any
) -> None:
    await secrets_api.call("PUT", "GH_TOKEN", body={"value": VALUE, "git_host": "github.com"})
    db = Path(app.db_path)
    stored = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert b"GH_TOKEN" in stored  # the row is there
    assert VALUE.encode() not in stored
    key_file = db.parent / "secrets.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert VALUE.encode() not in key_file.read_bytes()


@pytest.mark.parametrize("server_settings", [TWO_USERS])
async def test_secrets_reach_only_their_owners_running_workspaces(
    jp_fetch: Callable[..., Any],
    service: Any,
    containers: InMemoryContainerManager,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    alice = SecretsApi(jp_fetch, "alice")
    await alice.call("PUT", "GH_TOKEN", body={"value": VALUE, "git_host": "git.internal:8443"})
    hers = await Api(jp_fetch, "alice").create(name="hers")
    stopped = await Api(jp_fetch, "alice").create(name="stopped")
    his = await Api(jp_fetch, "bob").create(name="his")
    files = containers.secret_files
    # Bob has no secrets: his (empty) files are written without holding up the start.
    await wait_for(lambda: his["container_name"] in files, timeout=30, interval=0.01)
    assert f"export GH_TOKEN={VALUE}\n" in files[hers["container_name"]]["env"]
    assert files[hers["container_name"]]["git-credentials"] == f"git.internal:8443\t{VALUE}\n"
    assert VALUE not in json.dumps(files[his["container_name"]])
    # A change reaches the running workspace without a restart; the stopped one at its start.
    containers.set_status(stopped["container_name"], "exited")
    await alice.call("PUT", "OTHER", body={"value": "it's $HOME"})
    assert "export OTHER='it'\"'\"'s $HOME'\n" in files[hers["container_name"]]["env"]
    assert "OTHER" not in files[stopped["container_name"]]["env"]
    await Api(jp_fetch, "alice").call("POST", f"{stopped['id']}/ensure")
    assert "OTHER" in files[stopped["container_name"]]["env"]
    await alice.call("DELETE", "GH_TOKEN")
    assert VALUE not in json.dumps(files[hers["container_name"]])
    assert files[hers["container_name"]]["git-credentials"] == ""
    assert VALUE not in json.dumps(files[his["container_name"]])
    assert VALUE not in caplog.text
    assert "GH_TOKEN" in caplog.text or "personal secrets" in caplog.text.lower()


@pytest.mark.parametrize("server_settings", [TWO_USERS])
async def test_a_start_waits_for_the_owners_secrets_only_when_there_are_some(
    jp_fetch: Callable[..., Any], service: Any, containers: InMemoryContainerManager
) -> None:
    gate = containers.gates["install_secrets"] = asyncio.Event()
    entered = containers.entered["install_secrets"] = asyncio.Event()
    files = containers.secret_files
    # No secrets: create and a later start answer while the (empty) files are being written
    # (a shell that starts first misses nothing); the files still arrive, once per start.
    bob = Api(jp_fetch, "bob")
    his = await asyncio.wait_for(bob.create(name="his"), 30)
    await asyncio.wait_for(entered.wait(), 30)
    assert containers.calls["install_secrets"] == 1
    gate.set()
    await wait_for(lambda: his["container_name"] in files, timeout=30, interval=0.01)
    assert files[his["container_name"]]["git-credentials"] == ""
    gate.clear()
    entered.clear()
    containers.set_status(his["container_name"], "exited")
    code, body = await asyncio.wait_for(bob.call("POST", f"{his['id']}/ensure"), 30)
    assert (code, body["status"]) == (200, "started")
    await asyncio.wait_for(entered.wait(), 30)
    assert containers.calls["install_secrets"] == 2
    gate.set()

    # With secrets, a start answers only once they are written: no shell may start without.
    gate.clear()
    entered.clear()
    await SecretsApi(jp_fetch, "alice").call("PUT", "API_KEY", body={"value": VALUE})
    creating = asyncio.ensure_future(Api(jp_fetch, "alice").create(name="hers"))
    await asyncio.wait_for(entered.wait(), 30)
    done, _ = await asyncio.wait({creating}, timeout=0.5)
    assert not done, "the create answered before the secrets were written"
    gate.set()
    hers = await asyncio.wait_for(creating, 30)
    assert f"export API_KEY={VALUE}\n" in files[hers["container_name"]]["env"]


def test_the_payload_quotes_every_value_for_the_shell() -> None:
    odd = "a'b\"c$(id)`x`\n\\ end"
    files = parse_secret_payload(render_payload([Secret("ODD", odd, None)]))
    (line,) = [line for line in files["env"].split("export ")[1:]]
    assert line.startswith("ODD='")
    assert "$(id)" in line
    assert list(files) == ["git-credentials", "env"]  # env last: the sign of arrival


def test_a_value_is_bound_to_its_owner_and_name() -> None:
    cipher = SecretCipher([os.urandom(32)])
    sealed = cipher.encrypt("alice", "TOKEN", VALUE)
    assert VALUE not in sealed
    assert cipher.decrypt("alice", "TOKEN", sealed) == VALUE
    for owner, name in (("bob", "TOKEN"), ("alice", "OTHER")):
        with pytest.raises(UnreadableSecret):
            cipher.decrypt(owner, name, sealed)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(UnreadableSecret):
        cipher.decrypt("alice", "TOKEN", tampered)
    assert cipher.encrypt("alice", "TOKEN", VALUE) != sealed  # a fresh nonce each time


def test_the_key_file_is_made_private_once_and_others_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "secrets.key"
    keys, created = load_key_file(str(path))
    assert created
    assert len(keys) == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key_file(str(path)) == (keys, False)
    path.chmod(0o644)
    with pytest.raises(SecretKeyError, match="chmod 600"):
        load_key_file(str(path))
    for text in ("not base64!", "c2hvcnQ="):
        with pytest.raises(SecretKeyError):
            parse_keys(text, "test")


def test_rotation_re_encrypts_with_the_new_key(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = str(tmp_path / "workspaces.sqlite")
    old, new = new_key(), new_key()

    def opened(keys: str) -> PersonalSecrets:
        secrets = PersonalSecrets(key=keys, log=logging.getLogger("rotation"))
        secrets.open(db)
        return secrets

    first = opened(old)
    assert first.store is not None
    first.store.put("alice", "TOKEN", VALUE, None, 0)
    first.store.close()
    caplog.set_level(logging.INFO)
    rotated = opened(f"{new}\n{old}")
    assert "Re-encrypted 1 personal secrets" in caplog.text
    rotated.store.close()  # type: ignore[union-attr]
    only_new = opened(new)
    assert only_new.store is not None
    assert only_new.store.values("alice") == ([Secret("TOKEN", VALUE, None)], [])
    only_new.store.close()
    only_old = SecretStore(db, SecretCipher(parse_keys(old, "old")))
    assert only_old.values("alice") == ([], ["TOKEN"])
    only_old.close()
    assert VALUE not in caplog.text
