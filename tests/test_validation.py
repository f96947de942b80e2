"""Input rules on their own, with git itself as the judge of branch names."""

from __future__ import annotations

import subprocess

import pytest

from jupyter_popebot_code.validation import InvalidInput, WorkspaceValidator, validate_branch

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
