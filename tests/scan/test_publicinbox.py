"""Reading a real public-inbox v2 inbox: epochs, order, increments, deletions."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from scanfixtures import Inbox, patch_mail, series_v1

from reviewbot.errors import BadInputError
from reviewbot.mail import publicinbox
from reviewbot.mail.parse import parse_message


def _ids(epoch: publicinbox.Epoch, after: str | None = None) -> list[str]:
    head = publicinbox.head_commit(epoch)
    assert head is not None
    return [parse_message(m.raw).message_id for m in publicinbox.iter_messages(epoch, after, head)]


def test_inbox_folder_yields_every_message_in_arrival_order(inbox: Inbox) -> None:
    inbox.deliver(*series_v1())
    (epoch,) = publicinbox.find_epochs(inbox.root)
    assert epoch.number == 0
    assert _ids(epoch) == ["v1-cover@example.org", "v1-p1@example.org", "v1-p2@example.org"]


def test_bare_epoch_is_a_source_on_its_own(inbox: Inbox) -> None:
    inbox.deliver(*series_v1())
    assert publicinbox.is_public_inbox(inbox.epoch)
    (epoch,) = publicinbox.find_epochs(inbox.epoch)
    assert epoch.path == inbox.epoch
    assert len(_ids(epoch)) == 3


def test_only_commits_after_the_position_are_read(inbox: Inbox) -> None:
    inbox.deliver(*series_v1())
    (epoch,) = publicinbox.find_epochs(inbox.root)
    position = publicinbox.head_commit(epoch)
    inbox.deliver(patch_mail("late@example.org", "[PATCH] mm: memcg: late", added=["\tx();"]))
    assert _ids(epoch, position) == ["late@example.org"]
    assert publicinbox.count_commits(epoch, position, inbox.head()) == 1


def test_a_commit_that_removes_m_yields_nothing(inbox: Inbox) -> None:
    inbox.deliver(*series_v1())
    # Its own identity: a fresh machine has none configured (a cold CI run found this).
    git = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org",
           f"--git-dir={inbox.epoch}"]
    head = inbox.head()
    # What public-inbox-learn rm leaves behind: a commit whose tree no longer has `m`.
    empty_tree = subprocess.run([*git, "mktree"], input="", capture_output=True, text=True,
                                check=True).stdout.strip()
    commit = subprocess.run([*git, "commit-tree", empty_tree, "-p", head, "-m", "rm"],
                            capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([*git, "update-ref", "HEAD", commit], check=True)
    (epoch,) = publicinbox.find_epochs(inbox.root)
    assert len(_ids(epoch)) == 3
    assert publicinbox.count_commits(epoch, None, commit) == 4


def test_epochs_sort_numerically(tmp_path: Path) -> None:
    for n in (10, 2, 0):
        subprocess.run(["git", "init", "-q", "--bare", str(tmp_path / "git" / f"{n}.git")],
                       check=True)
    assert [e.number for e in publicinbox.find_epochs(tmp_path)] == [0, 2, 10]


def test_a_plain_folder_is_not_an_inbox(tmp_path: Path) -> None:
    assert not publicinbox.is_public_inbox(tmp_path)
    with pytest.raises(BadInputError, match="not a public-inbox"):
        publicinbox.find_epochs(tmp_path)


def test_since_must_name_a_commit(inbox: Inbox) -> None:
    inbox.deliver(*series_v1())
    (epoch,) = publicinbox.find_epochs(inbox.root)
    with pytest.raises(BadInputError, match="not a commit"):
        publicinbox.resolve(epoch, "deadbeef")
