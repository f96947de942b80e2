"""List and Dict options that take a JSON (or Python) literal written as one string.

On the `jupyter server` command line, options of an extension's classes reach traitlets as one
string each. traitlets' List then fails to parse `--CodeWorkspacesApp.admin_users='["boss"]'`
(its parser validates without an object and gives up) and keeps the string as the list's only
item, ['["boss"]'], silently. These traits parse the literal when the option is set, where the
object is known, and refuse a malformed one with a message saying how to write it.
"""

from __future__ import annotations

import ast
import json
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import traitlets
from traitlets import TraitError

T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


def _literal(
    trait: traitlets.TraitType[Any, Any], obj: Any, text: str, kinds: type | tuple[type, ...]
) -> Any:
    """`text` parsed as JSON, else as a Python literal; TraitError saying how to write it."""
    for parse in (json.loads, ast.literal_eval):
        try:
            value = parse(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            continue
        if isinstance(value, kinds):
            return value
    owner = type(obj).__name__ if obj is not None else "the option"
    option = f"{owner}.{trait.name}"
    example = '\'["a", "b"]\'' if kinds is not dict else '\'{"key": "value"}\''
    raise TraitError(
        f"{option}: cannot read {text!r} as a {'dict' if kinds is dict else 'list'}; "
        f"on the command line write it as JSON in single quotes, e.g. --{option}={example}"
    )


class List(traitlets.List[T]):
    """traitlets' List that also takes a list literal as one string (the command line's form).

    A string that does not start with '[' or '(' is one item, as traitlets makes it.
    """

    def from_string(self, s: str) -> list[T] | None:
        # Left to set(), which knows the object (and so the option's name for an error).
        return s  # type: ignore[return-value]

    def set(self, obj: Any, value: Any) -> None:
        if isinstance(value, str) and value.lstrip()[:1] in ("[", "("):
            value = list(_literal(self, obj, value, (list, tuple)))
        super().set(obj, value)


if TYPE_CHECKING:

    class _Dict(traitlets.Dict[K, V]): ...
else:
    # traitlets' Dict is generic to type checkers only.
    class _Dict(traitlets.Dict, Generic[K, V]): ...


class Dict(_Dict[K, V]):
    """traitlets' Dict that also takes a JSON object as one string (the command line's form).

    traitlets reads only Python literals there (no true, false or null) and keeps a malformed
    one as a string, refused with a message that does not say how to write it.
    """

    def from_string(self, s: str) -> dict[K, V] | None:
        if s.lstrip()[:1] == "{":
            return s  # type: ignore[return-value]  # left to validate(), as for List
        return super().from_string(s)  # traitlets' key=value form

    def validate(self, obj: Any, value: Any) -> dict[K, V] | None:
        if isinstance(value, str):
            value = _literal(self, obj, value, dict)
        return super().validate(obj, value)
