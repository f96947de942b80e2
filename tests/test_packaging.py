"""The installed package is what Jupyter sees: both extensions enabled and valid."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

JUPYTER = str(Path(sys.executable).parent / "jupyter")
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def jupyter_output(*args: str) -> str:
    done = subprocess.run([JUPYTER, *args], capture_output=True, text=True, timeout=120, check=True)
    return ANSI.sub("", done.stdout + done.stderr)


def test_the_server_extension_is_enabled_and_ok() -> None:
    listed = jupyter_output("server", "extension", "list")
    assert re.search(r"jupyter_popebot_code\s+enabled", listed), listed
    assert re.search(r"jupyter_popebot_code \S+\s+OK", listed), listed


def test_the_lab_extension_is_enabled_and_ok() -> None:
    listed = jupyter_output("labextension", "list")
    assert re.search(r"jupyter-popebot-code v\S+\s+enabled\s+OK", listed), listed
