"""Input rules on their own, with git itself as the judge of branch names."""

from __future__ import annotations

import re
import subprocess

import pytest

from jupyter_popebot_code.core.validation import WorkspaceValidator, validate_branch
from jupyter_popebot_code.errors import InvalidInput

BRANCHES = [
    "main", "feature/x", "release-1.2", "v1.0", "a_b", "ünïcode", "a.b", "x/y/z", "HEAD-ish",
    "-b", "a..b", "a b", "x.lock", "x/y.lock/z", "a@{1}", "x~1", "x^", "x:y", "x?", "x*", "x[",
    "a\\b", ".hidden", "x/.hidden", "trailing/", "/leading", "a//b", "dot.", "tab\tname",
    "del\x7f", "a@b", "@x", "x.lock/y",
]  # fmt: skip


@pytest.mark.parametrize("branch", BRANCHES)
def test_branch_rules_agree_with_git(branch: str) -> None:
    git = subprocess.run(
        ["git", "check-ref-format", "--branch", branch], capture_output=True, check=False
    )
    try:
        validate_branch(branch)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == (git.returncode == 0), git.stderr


def test_at_alone_is_refused_though_git_reads_it_as_head() -> None:
    with pytest.raises(InvalidInput, match="reserved"):
        validate_branch("@")


def test_shorthand_expands_through_the_template() -> None:
    validator = WorkspaceValidator("https://git.example.com/{repo}.git", ("https",))
    assert validator.clone_url(validator.validate_repo("team/project")) == (
        "https://git.example.com/team/project.git"
    )
    assert validator.clone_url("") == ""
    url = "https://example.org/x/y.git"
    assert validator.clone_url(validator.validate_repo(url)) == url


def test_allowed_schemes_are_configurable_and_passed_to_git() -> None:
    validator = WorkspaceValidator("https://github.com/{repo}.git", ("https",))
    with pytest.raises(InvalidInput, match="not allowed"):
        validator.validate_repo("ssh://git@example.com/x.git")
    with pytest.raises(InvalidInput, match="ssh"):
        validator.validate_repo("git@example.com:x/y.git")
    assert validator.git_allow_protocol() == "https"
    permissive = WorkspaceValidator("https://github.com/{repo}.git", ("https", "ssh", "git"))
    assert permissive.git_allow_protocol() == "https:ssh:git"


DEFAULT_SCHEMES = ("https", "ssh", "git")
WITH_HTTP = ("http", "https", "ssh", "git")
CREDENTIAL = "credential helper"
SAME = "="  # accepted and stored as given

# (repo, allowed schemes, stored repo (SAME: as given) or None if refused, part of the refusal)
REPOS: list[tuple[str, tuple[str, ...], str | None, str]] = [
    # a user name without password stays accepted for ssh
    ("git@github.com:jupyter/notebook.git", DEFAULT_SCHEMES, SAME, ""),
    ("ssh://git@example.com/team/repo.git", DEFAULT_SCHEMES, SAME, ""),
    ("ssh://git@example.com:2222/r.git", DEFAULT_SCHEMES, SAME, ""),
    # passwords in any URL, any user info at all for http(s)
    ("https://user:hunter2@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://user:@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://:hunter2@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://ghp_token@github.com/o/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://oauth2@gitlab.com/o/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("http://token@example.com/r.git", WITH_HTTP, None, CREDENTIAL),
    ("HTTPS://user:hunter2@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("https://user:hunter2@[::1]:8443/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("ssh://git:s3cr3t@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("ssh://git:@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("ssh://git:s3cr3t@[::1]/r", DEFAULT_SCHEMES, None, CREDENTIAL),
    ("git://user:s3cr3t@example.com/r.git", DEFAULT_SCHEMES, None, CREDENTIAL),
    # IPv6 hosts
    ("https://[::1]:8443/r.git", DEFAULT_SCHEMES, SAME, ""),
    ("https://[2001:db8::42]/o/r.git", DEFAULT_SCHEMES, SAME, ""),
    ("git://[fd00::5]/r.git", DEFAULT_SCHEMES, SAME, ""),
    ("ssh://git@[::1]/r", DEFAULT_SCHEMES, SAME, ""),
    ("ssh://git@[::1]:2222/r", DEFAULT_SCHEMES, SAME, ""),
    ("https://[::1/r.git", DEFAULT_SCHEMES, None, "not a valid URL"),
    ("https://[zz::1]/r.git", DEFAULT_SCHEMES, None, "not a valid URL"),
    ("https://[fe80::1%25eth0]/r.git", DEFAULT_SCHEMES, None, "host"),
    # schemes: compared case-insensitively, stored in lower case, nothing else changed
    ("HTTPS://Host.Example.com/T/R.git", DEFAULT_SCHEMES, "https://Host.Example.com/T/R.git", ""),
    ("Git://Example.com/R.git", DEFAULT_SCHEMES, "git://Example.com/R.git", ""),
    ("SSH://git@Example.com/R", DEFAULT_SCHEMES, "ssh://git@Example.com/R", ""),
    ("HTTP://example.com/r.git", DEFAULT_SCHEMES, None, "not allowed"),
    ("FILE:///etc", DEFAULT_SCHEMES, None, "not allowed"),
    # transport helpers stay refused, whatever their case
    ("ext::sh", DEFAULT_SCHEMES, None, "transport helpers"),
    ("EXT::sh", DEFAULT_SCHEMES, None, "transport helpers"),
    ("fd::17", DEFAULT_SCHEMES, None, "transport helpers"),
    ("::x", DEFAULT_SCHEMES, None, "transport helpers"),
    ("https::https://example.com/r.git", DEFAULT_SCHEMES, None, "transport helpers"),
]  # fmt: skip


@pytest.mark.parametrize(("repo", "schemes", "stored", "reason"), REPOS)
def test_repository_urls(
    repo: str, schemes: tuple[str, ...], stored: str | None, reason: str
) -> None:
    validator = WorkspaceValidator("https://github.com/{repo}.git", schemes)
    if stored is None:
        with pytest.raises(InvalidInput, match=re.escape(reason)) as refused:
            validator.validate_repo(repo)
        assert refused.value.field == "repo"
        # A refusal never repeats the secret it refuses.
        for secret in ("hunter2", "s3cr3t", "ghp_token"):
            assert secret not in refused.value.message
    else:
        expected = repo if stored == SAME else stored
        assert validator.validate_repo(repo) == expected
        assert validator.clone_url(expected) == expected


@pytest.mark.parametrize(
    ("stored", "cloned"),
    [
        ("HTTPS://Example.com/R.git", "https://Example.com/R.git"),
        ("Git://[fd00::5]/r.git", "git://[fd00::5]/r.git"),
        ("git@Example.com:o/r.git", "git@Example.com:o/r.git"),
        ("Team/Project", "https://github.com/Team/Project.git"),
    ],
)
def test_clone_url_lower_cases_only_the_scheme(stored: str, cloned: str) -> None:
    """Also for records stored before schemes were normalised: git compares them exactly."""
    validator = WorkspaceValidator("https://github.com/{repo}.git", DEFAULT_SCHEMES)
    assert validator.clone_url(stored) == cloned
    assert validator.git_allow_protocol() == "https:ssh:git"


def test_upper_case_configured_schemes_reach_git_in_lower_case() -> None:
    validator = WorkspaceValidator("https://github.com/{repo}.git", ("HTTPS", "Git"))
    assert validator.git_allow_protocol() == "https:git"
    assert validator.validate_repo("GIT://example.com/r.git") == "git://example.com/r.git"
