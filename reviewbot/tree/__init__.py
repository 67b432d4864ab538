"""The kernel tree: import (``tree init``), base selection, worktrees and applying series.

Modules (git itself runs through :mod:`reviewbot.gitcmd`): :mod:`repo` (init/open), :mod:`bases`
(which base, and why), :mod:`worktree` (reusable per-base worktrees with locks),
:mod:`safety` (untrusted diffs), :mod:`apply` (``git am --3way``), :mod:`stage` (the
pipeline stage).
"""
