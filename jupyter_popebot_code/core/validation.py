"""Checks on what users send: workspace names, repositories and branches.

Repository URLs and branch names end up as git arguments inside the container, so anything that
git could read as an option or a transport helper is refused here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..errors import InvalidInput

NAME_MAX_LENGTH = 100
REPO_MAX_LENGTH = 2048
BRANCH_MAX_LENGTH = 255

# GitHub's rules for an owner and a repository name: a shorthand that looks like one is expanded.
_SHORTHAND = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")
# scp-like ssh syntax, `user@host:path`, as git accepts it.
_SCP_LIKE = re.compile(r"[A-Za-z0-9._-]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*):[A-Za-z0-9._~/-]+")
# urlsplit().hostname (lower-cased) of a host name or an IPv4 address; IPv6 is checked apart.
_HOST = re.compile(r"[a-z0-9](?:[a-z0-9.-]*)")
# git runs the helper `git-remote-<name>` for `<name>::<address>` (transport.c): only at the start.
_TRANSPORT_HELPER = re.compile(r"[A-Za-z0-9+.-]*::")
# Schemes whose user name part is itself a credential (`https://<token>@github.com/...`).
_HTTP_SCHEMES = ("http", "https")
_CREDENTIAL_HINT = (
    "Keep credentials out of the URL (anyone who can read the workspace's settings or its "
    "container's environment would see them): use a git credential helper in the workspace "
    "(e.g. `gh auth setup-git`, or `git config --global credential.helper store`) or an ssh key."
)
_BRANCH_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


@dataclass(frozen=True)
class WorkspaceSpec:
    """A validated request to create a workspace."""

    name: str
    repo: str
    branch: str


def validate_name(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput("name must be a string.", "name")
    name = value.strip()
    if not name:
        raise InvalidInput("name must not be empty.", "name")
    if len(name) > NAME_MAX_LENGTH:
        raise InvalidInput(f"name must be at most {NAME_MAX_LENGTH} characters.", "name")
    if not name.isprintable():
        raise InvalidInput("name must not contain control characters or line breaks.", "name")
    return name


def validate_branch(value: Any) -> str:
    """Accept an empty branch (the repository's default) or a name git's ref rules allow."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput("branch must be a string.", "branch")
    branch = value.strip()
    if not branch:
        return ""
    problem = _branch_problem(branch)
    if problem:
        raise InvalidInput(
            f"branch {branch!r} is not a valid git branch name: {problem}.", "branch"
        )
    return branch


def _branch_problem(branch: str) -> str | None:
    # The rules of `git check-ref-format --branch`.
    if len(branch) > BRANCH_MAX_LENGTH:
        return f"longer than {BRANCH_MAX_LENGTH} characters"
    if branch.startswith("-"):
        return "it starts with '-'"
    if branch == "@":
        return "'@' alone is reserved"
    if _BRANCH_FORBIDDEN.search(branch):
        return "it contains a space, a control character or one of ~ ^ : ? * [ \\"
    if "@{" in branch:
        return "it contains '@{'"
    if ".." in branch:
        return "it contains '..'"
    if branch.startswith("/") or branch.endswith("/") or "//" in branch:
        return "it has an empty path component"
    if branch.endswith("."):
        return "it ends with '.'"
    for component in branch.split("/"):
        if component.startswith("."):
            return "a component starts with '.'"
        if component.endswith(".lock"):
            return "a component ends with '.lock'"
    return None


class WorkspaceValidator:
    """Validates create and rename requests and turns a repository into a clone URL."""

    def __init__(self, repo_url_template: str, allowed_schemes: tuple[str, ...]) -> None:
        self.repo_url_template = repo_url_template
        self.allowed_schemes = tuple(scheme.lower() for scheme in allowed_schemes)

    def create_spec(self, body: Mapping[str, Any]) -> WorkspaceSpec:
        name = validate_name(body.get("name", "Code Workspace"))
        repo = self.validate_repo(body.get("repo", ""))
        branch = validate_branch(body.get("branch", ""))
        return WorkspaceSpec(name=name, repo=repo, branch=branch)

    def validate_repo(self, value: Any) -> str:
        """Accept '' (no clone), `owner/name`, or a URL with an allowed scheme."""
        if value is None:
            return ""
        if not isinstance(value, str):
            raise InvalidInput("repo must be a string.", "repo")
        repo = value.strip()
        if not repo:
            return ""
        if len(repo) > REPO_MAX_LENGTH:
            raise InvalidInput(f"repo must be at most {REPO_MAX_LENGTH} characters.", "repo")
        if repo.startswith("-"):
            raise InvalidInput("repo must not start with '-'.", "repo")
        if any(ch.isspace() or not ch.isprintable() for ch in repo):
            raise InvalidInput("repo must not contain whitespace or control characters.", "repo")
        if _SHORTHAND.fullmatch(repo):
            return repo
        if _TRANSPORT_HELPER.match(repo):
            raise InvalidInput(
                "git transport helpers ('ext::', 'fd::', ...) are not allowed.", "repo"
            )
        if _SCP_LIKE.fullmatch(repo):
            if "ssh" not in self.allowed_schemes:
                raise InvalidInput("ssh repositories are not allowed on this server.", "repo")
            if repo.split(":", 1)[1].startswith("-"):
                raise InvalidInput("the repository path must not start with '-'.", "repo")
            return repo
        return self._check_url(repo)

    def _check_url(self, repo: str) -> str:
        """Check a repository URL; return it with its scheme in lower case."""
        allowed = ", ".join(self.allowed_schemes)
        hint = f"Use owner/name or a URL with one of these schemes: {allowed}."
        try:
            parts = urlsplit(repo)
            port = parts.port
        except ValueError as err:
            raise InvalidInput(f"repo is not a valid URL ({err}). {hint}", "repo") from err
        if not parts.scheme:
            raise InvalidInput(f"repo {repo!r} is neither owner/name nor a URL. {hint}", "repo")
        # urlsplit lower-cases the scheme; git's GIT_ALLOW_PROTOCOL does not, so store it so.
        scheme = parts.scheme
        if scheme not in self.allowed_schemes:
            raise InvalidInput(f"repo URL scheme {scheme!r} is not allowed. {hint}", "repo")
        if scheme != "file":
            if not _valid_host(parts.netloc.rpartition("@")[2], parts.hostname):
                raise InvalidInput("repo URL must name a valid host.", "repo")
            if port is not None and not 0 < port < 65536:
                raise InvalidInput("repo URL has an invalid port.", "repo")
        if parts.password is not None:
            raise InvalidInput(f"repo URL must not contain a password. {_CREDENTIAL_HINT}", "repo")
        if scheme in _HTTP_SCHEMES and "@" in parts.netloc:
            raise InvalidInput(
                "repo URL must not contain a user name or token before '@' (for https a lone "
                f"token@ is a credential on GitHub and GitLab). {_CREDENTIAL_HINT}",
                "repo",
            )
        if not parts.path or parts.path == "/":
            raise InvalidInput("repo URL must name a repository path.", "repo")
        if parts.path.lstrip("/").startswith("-"):
            raise InvalidInput("the repository path must not start with '-'.", "repo")
        return _lower_scheme(repo)

    def clone_url(self, repo: str) -> str:
        """The URL git clones for a validated repo ('' means no clone)."""
        if repo and _SHORTHAND.fullmatch(repo):
            return self.repo_url_template.format(repo=repo)
        # Records stored before schemes were normalised may still hold `HTTPS://...`.
        return _lower_scheme(repo) if "://" in repo else repo

    def git_allow_protocol(self) -> str:
        return ":".join(self.allowed_schemes)


def _valid_host(host_port: str, hostname: str | None) -> bool:
    """A host name, an IPv4 address, or an IPv6 address in brackets (no zone id)."""
    if not hostname:
        return False
    if host_port.startswith("["):
        if "%" in hostname:
            return False  # a zone id names an interface of this machine, not a server
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            return False
        return True
    return bool(_HOST.fullmatch(hostname))


def _lower_scheme(url: str) -> str:
    """`url` with only its scheme lower-cased: git compares schemes case-sensitively."""
    scheme, sep, rest = url.partition(":")
    return f"{scheme.lower()}{sep}{rest}"
