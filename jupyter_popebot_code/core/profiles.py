"""Workspace profiles: the images (and their limits) an operator offers, and who may use which.

`CodeWorkspacesApp.profiles` is a list of dicts in the style of KubeSpawner's `profile_list`.
It is checked once, at start (a bad entry stops the server with a message naming it); requests
then only choose among the checked profiles. No profiles: every workspace runs
ContainerManager.image with ContainerManager's limits, as before profiles existed.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..errors import InvalidInput, ProfileError, ProfileForbidden

# A slug is stored with the workspace and shown in URLs and logs: short and plain.
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,62})")
# Docker's size notation as docker.utils.parse_bytes reads it ("512m", "2g", "1048576").
_SIZE = re.compile(r"[0-9]+[bkmg]?", re.IGNORECASE)
_KEYS = frozenset(
    {
        "slug",
        "display_name",
        "description",
        "image",
        "limits",
        "default",
        "allowed_users",
        "allowed_groups",
    }
)
_LIMIT_KEYS = frozenset({"cpus", "memory", "pids", "disk"})


@dataclass(frozen=True)
class Limits:
    """A profile's limits; None: ContainerManager's own (cpu_limit, mem_limit, ...)."""

    cpus: float | None = None
    memory: str | None = None
    pids: int | None = None
    disk: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            name: value
            for name, value in (
                ("cpus", self.cpus),
                ("memory", self.memory),
                ("pids", self.pids),
                ("disk", self.disk),
            )
            if value is not None
        }


@dataclass(frozen=True)
class Caller:
    """Who asks, as profiles restrict it: names (owner, user name, email) and groups."""

    names: frozenset[str]
    groups: frozenset[str] = frozenset()

    @classmethod
    def of(cls, names: Collection[str | None], groups: Collection[str] = ()) -> Caller:
        return cls(frozenset(name for name in names if name), frozenset(groups))


@dataclass(frozen=True)
class Profile:
    """One checked entry of CodeWorkspacesApp.profiles."""

    slug: str
    display_name: str
    description: str
    image: str
    limits: Limits = field(default_factory=Limits)
    default: bool = False
    allowed_users: frozenset[str] = frozenset()
    allowed_groups: frozenset[str] = frozenset()

    @property
    def restricted(self) -> bool:
        return bool(self.allowed_users or self.allowed_groups)

    def allows(self, caller: Caller) -> bool:
        """Open to everyone, or the caller is listed by a name or a group (emails in any case)."""
        if not self.restricted:
            return True
        if caller.groups & self.allowed_groups:
            return True
        listed = {name.casefold() if "@" in name else name for name in self.allowed_users}
        return any((name.casefold() if "@" in name else name) in listed for name in caller.names)

    def to_json(self) -> dict[str, Any]:
        """What a user sees of it (who else may use it stays with the operator)."""
        return {
            "slug": self.slug,
            "display_name": self.display_name,
            "description": self.description,
            "image": self.image,
            "limits": self.limits.to_json(),
            "default": self.default,
        }


class HasContainerDefaults(Protocol):
    """What ContainerResources.of reads of a container manager."""

    image: str
    mem_limit: str
    cpu_limit: float
    pids_limit: int


@dataclass(frozen=True)
class ContainerResources:
    """The image and limits one container is made with: its profile's over the manager's."""

    image: str
    memory: str
    cpus: float
    pids: int
    # None: the manager decides (owner_disk_limit, else disk_limit).
    disk: str | None = None

    @classmethod
    def of(cls, profile: Profile | None, defaults: HasContainerDefaults) -> ContainerResources:
        limits = profile.limits if profile is not None else Limits()
        return cls(
            image=profile.image if profile is not None else defaults.image,
            memory=limits.memory if limits.memory is not None else defaults.mem_limit,
            cpus=limits.cpus if limits.cpus is not None else defaults.cpu_limit,
            pids=limits.pids if limits.pids is not None else defaults.pids_limit,
            disk=limits.disk,
        )


def _text(entry: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
    value = entry.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value.strip()):
        raise ProfileError(f"{where}: '{key}' must be a non-empty string, not {value!r}.")
    return value.strip()


def _names(entry: Mapping[str, Any], key: str, where: str) -> frozenset[str]:
    value = entry.get(key, [])
    if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
        raise ProfileError(f"{where}: '{key}' must be a list of names, not {value!r}.")
    if not all(isinstance(name, str) and name for name in value):
        raise ProfileError(f"{where}: '{key}' must hold non-empty strings only.")
    return frozenset(value)


def _limits(value: Any, where: str) -> Limits:
    if value is None:
        return Limits()
    if not isinstance(value, Mapping):
        raise ProfileError(f"{where}: 'limits' must be a dict, not {value!r}.")
    unknown = sorted(set(value) - _LIMIT_KEYS)
    if unknown:
        raise ProfileError(
            f"{where}: unknown limit(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_LIMIT_KEYS))}."
        )
    cpus = value.get("cpus")
    if cpus is not None and (isinstance(cpus, bool) or not isinstance(cpus, (int, float))):
        raise ProfileError(f"{where}: limits 'cpus' must be a number, not {cpus!r}.")
    if cpus is not None and cpus < 0:
        raise ProfileError(f"{where}: limits 'cpus' must be 0 (no limit) or more, not {cpus!r}.")
    pids = value.get("pids")
    if pids is not None and (isinstance(pids, bool) or not isinstance(pids, int) or pids < 0):
        raise ProfileError(
            f"{where}: limits 'pids' must be a whole number, 0 (no limit) or more, not {pids!r}."
        )
    sizes: dict[str, str | None] = {}
    for key in ("memory", "disk"):
        size = value.get(key)
        if size is not None:
            size = str(size) if isinstance(size, int) and not isinstance(size, bool) else size
            if not isinstance(size, str) or not (size == "" or _SIZE.fullmatch(size)):
                raise ProfileError(
                    f"{where}: limits '{key}' must be a size such as '512m' or '2g' ('' or '0': "
                    f"no limit), not {value.get(key)!r}."
                )
        sizes[key] = size
    return Limits(
        cpus=float(cpus) if cpus is not None else None,
        memory=sizes["memory"],
        pids=pids,
        disk=sizes["disk"],
    )


def parse_profile(entry: Any, index: int) -> Profile:
    """One entry of the option, checked; ProfileError naming the entry otherwise."""
    where = f"CodeWorkspacesApp.profiles[{index}]"
    if not isinstance(entry, Mapping):
        raise ProfileError(f"{where} must be a dict, not {entry!r}.")
    slug = entry.get("slug")
    if isinstance(slug, str):
        where = f"{where} ({slug!r})"
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(_KEYS))}."
        )
    if not isinstance(slug, str) or not _SLUG.fullmatch(slug):
        raise ProfileError(
            f"{where}: 'slug' must be 1-63 lower-case letters, digits, '-' or '_' (starting "
            f"with a letter or digit), not {slug!r}."
        )
    default = entry.get("default", False)
    if not isinstance(default, bool):
        raise ProfileError(f"{where}: 'default' must be true or false, not {default!r}.")
    image = _text(entry, "image", where)
    if any(ch.isspace() for ch in image):
        raise ProfileError(f"{where}: 'image' must not contain whitespace: {image!r}.")
    return Profile(
        slug=slug,
        display_name=_text(entry, "display_name", where, required=False) or slug,
        description=_text(entry, "description", where, required=False),
        image=image,
        limits=_limits(entry.get("limits"), where),
        default=default,
        allowed_users=_names(entry, "allowed_users", where),
        allowed_groups=_names(entry, "allowed_groups", where),
    )


def parse_profiles(entries: Sequence[Any]) -> tuple[Profile, ...]:
    """The whole option, checked: entries, unique slugs, at most one default."""
    profiles = tuple(parse_profile(entry, index) for index, entry in enumerate(entries))
    seen: set[str] = set()
    for profile in profiles:
        if profile.slug in seen:
            raise ProfileError(f"CodeWorkspacesApp.profiles: slug {profile.slug!r} appears twice.")
        seen.add(profile.slug)
    defaults = [profile.slug for profile in profiles if profile.default]
    if len(defaults) > 1:
        raise ProfileError(
            f"CodeWorkspacesApp.profiles: only one profile may be the default, not "
            f"{', '.join(map(repr, defaults))}."
        )
    return profiles


class ProfileCatalog:
    """The checked profiles, and the choice of one for a caller's new workspace."""

    def __init__(self, profiles: Sequence[Profile] = ()) -> None:
        self.profiles = tuple(profiles)
        self._by_slug = {profile.slug: profile for profile in self.profiles}

    def __bool__(self) -> bool:
        return bool(self.profiles)

    def get(self, slug: str) -> Profile | None:
        """The profile a workspace was made with; None for none (or one since removed)."""
        return self._by_slug.get(slug) if slug else None

    def for_caller(self, caller: Caller) -> list[Profile]:
        """The profiles the caller may use, in the operator's order."""
        return [profile for profile in self.profiles if profile.allows(caller)]

    def choose(self, requested: Any, caller: Caller) -> Profile | None:
        """The profile of a new workspace: the one asked for, else the caller's default.

        None when no profiles are configured. InvalidInput (400, field 'profile') for one that
        does not exist; ProfileForbidden (403) for one the caller may not use, or when none is
        asked for and the caller may use none.
        """
        if requested is not None and not isinstance(requested, str):
            raise InvalidInput("profile must be a string.", "profile")
        slug = (requested or "").strip()
        if not self.profiles:
            if slug:
                raise InvalidInput(
                    f"Unknown profile {slug!r}: this server offers no profiles.", "profile"
                )
            return None
        if slug:
            profile = self._by_slug.get(slug)
            if profile is None:
                offered = ", ".join(p.slug for p in self.for_caller(caller)) or "none"
                raise InvalidInput(
                    f"Unknown profile {slug!r}. Profiles you may use: {offered}.", "profile"
                )
            if not profile.allows(caller):
                raise ProfileForbidden(f"You may not use the profile {slug!r}.")
            return profile
        usable = self.for_caller(caller)
        if not usable:
            raise ProfileForbidden("No workspace profile of this server is open to you.")
        return next((profile for profile in usable if profile.default), usable[0])
