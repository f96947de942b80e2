"""docs/openapi.yaml describes what the server really serves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from jupyter_popebot_code.preview.proxy import preview_handlers
from jupyter_popebot_code.terminal.handler import relay_handlers
from jupyter_popebot_code.web.handlers import workspace_handlers
from jupyter_popebot_code.web.profiles import profile_handlers
from jupyter_popebot_code.web.secrets import secret_handlers

from .conftest import Api

SPEC = yaml.safe_load((Path(__file__).parent.parent / "docs" / "openapi.yaml").read_text())


def as_openapi_path(pattern: str) -> str:
    path = re.sub(r"\(\?P<workspace_id>[^)]*\)", "{id}", pattern)
    path = re.sub(r"\(\?P<(key|port|name)>[^)]*\)", r"{\1}", path)
    return re.sub(r"\(\?P<path>[^)]*\)\?", "/{path}", path).rstrip("?").rstrip("/")


def test_every_route_is_documented_and_every_documented_path_is_served() -> None:
    routes = [
        *workspace_handlers(),
        *profile_handlers(),
        *secret_handlers(),
        *relay_handlers(),
        *preview_handlers(),
    ]
    served = {as_openapi_path(route[0]) for route in routes}
    # preview-absolute is openPreview with the whole path sent on, documented there.
    absolute = "/code/preview-absolute/{id}/{key}/{port}/{path}"
    served.remove(absolute)
    preview = SPEC["paths"]["/code/preview/{id}/{key}/{port}/{path}"]["get"]
    assert "/code/preview-absolute/" in preview["description"]
    assert served == set(SPEC["paths"])


def schema(name: str) -> dict[str, Any]:
    return SPEC["components"]["schemas"][name]  # type: ignore[no-any-return]


async def test_answers_have_the_documented_fields(api: Api) -> None:
    workspace = await api.create(name="documented")
    documented = schema("Workspace")
    assert set(documented["required"]) <= set(workspace) <= set(documented["properties"])
    assert re.fullmatch(documented["properties"]["id"]["pattern"], workspace["id"])
    code, listed = await api.call("GET")
    assert code == 200
    assert set(listed) == set(
        SPEC["paths"]["/api/code/workspaces"]["get"]["responses"]["200"]["content"][
            "application/json"
        ]["schema"]["properties"]
    )
    ensure_statuses = SPEC["paths"]["/api/code/workspaces/{id}/ensure"]["post"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["properties"]["status"]["enum"]
    code, ensured = await api.call("POST", f"{workspace['id']}/ensure")
    assert (code, ensured["status"] in ensure_statuses) == (200, True)
    stop_statuses = SPEC["paths"]["/api/code/workspaces/{id}/stop"]["post"]["responses"]["200"][
        "content"
    ]["application/json"]["schema"]["properties"]["status"]["enum"]
    code, stopped = await api.call("POST", f"{workspace['id']}/stop")
    assert (code, stopped["status"] in stop_statuses) == (200, True)
    code, error = await api.call("POST", body={"name": ""})
    assert code == 400
    assert set(error) <= set(schema("Error")["properties"])
