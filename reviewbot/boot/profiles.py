"""Build profiles: which kernel a series is built and booted as (``build.profiles``).

``fast`` is the memcg fragment alone; ``debug`` adds lockdep with PROVE_RCU, KASAN,
kmemleak, debug objects and DEBUG_VM (reviewbot/data/debug.config) and costs several times
the boot time on TCG. ``build.profile: auto`` picks the first profile whose ``when_touched``
patterns match a file the series touches, else the first profile listed; a profile name in
``build.profile`` or ``--profile`` forces one. The base kernel is always built and booted
with the patched kernel's profile: splats are compared base against patched.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reviewbot.config import BuildProfile, Settings
from reviewbot.errors import BadInputError, ConfigError

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # reviewbot/data
AUTO = "auto"


@dataclass(frozen=True)
class Profile:
    """A chosen profile, with its fragment files resolved and the reason it was chosen."""

    name: str
    fragments: tuple[Path, ...]
    cmdline: tuple[str, ...]
    timeout_factor: float
    reason: str  # "given with --profile", "build.profile", "the series touches mm/x.c", ...
    default: bool = False  # the first of build.profiles

    @property
    def dir_suffix(self) -> str:
        """What O= directory names get: none for the default profile, so the directories a
        fast build always used stay where they were (warm caches stay warm)."""
        return "" if self.default else f"-{self.name}"

    def scaled(self, seconds: int) -> int:
        return int(seconds * self.timeout_factor)


def touches(patterns: Iterable[str], path: str) -> bool:
    """Whether ``path`` (relative to the tree) matches one of the fnmatch ``patterns``.

    ``*`` matches across ``/`` (fnmatch has no notion of directories), so ``mm/*`` is
    everything under mm/.
    """
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def check(settings: Settings, name: str) -> None:
    """Raise BadInputError unless build.profiles has a profile called ``name``."""
    _by_name(settings, name)


def _by_name(settings: Settings, name: str) -> BuildProfile:
    for profile in settings.build.profiles:
        if profile.name == name:
            return profile
    known = ", ".join(p.name for p in settings.build.profiles) or "none"
    raise BadInputError(f"unknown build profile {name!r} (build.profiles has: {known})")


def fragment_path(settings: Settings, raw: str) -> Path:
    """A profile's fragment: a bare file name is one shipped in reviewbot/data (debug.config),
    anything else a path like build.fragments' ({data}, ~, $VARS)."""
    path = DATA_DIR / raw if "/" not in raw and (DATA_DIR / raw).is_file() else Path(settings.path(raw))
    if not path.is_file():
        raise ConfigError(f"Kconfig fragment of a build profile not found: {raw}", source=str(path))
    return path


def resolve(settings: Settings, profile: BuildProfile, reason: str) -> Profile:
    if profile.timeout_factor <= 0:
        raise ConfigError(f"build.profiles {profile.name}: timeout_factor must be > 0", source=settings.source)
    return Profile(
        profile.name,
        tuple(fragment_path(settings, raw) for raw in profile.fragments),
        profile.cmdline,
        profile.timeout_factor,
        reason,
        default=profile == settings.build.profiles[0],
    )


def choose(settings: Settings, touched: Iterable[str], override: str | None = None) -> Profile:
    """The profile for a series touching ``touched`` (empty for a base-only boot).

    Args:
        settings: build.profile and build.profiles.
        touched: the series' files, relative to the tree.
        override: ``--profile``; wins over build.profile.
    Raises:
        BadInputError: an unknown profile name (from --profile or build.profile).
        ConfigError: no profiles, a nameless or duplicate one, or a missing fragment file.
    """
    names = [p.name for p in settings.build.profiles]
    if not names or "" in names or len(set(names)) != len(names):
        raise ConfigError("build.profiles needs at least one profile, each with its own name "
                          f"(got: {names})", source=settings.source)
    if override:
        return resolve(settings, _by_name(settings, override), "given with --profile")
    if settings.build.profile != AUTO:
        return resolve(settings, _by_name(settings, settings.build.profile), "build.profile")
    files = sorted(touched)
    for profile in settings.build.profiles:
        hits = [f for f in files if touches(profile.when_touched, f)]
        if hits:
            more = f" and {len(hits) - 1} more" if len(hits) > 1 else ""
            return resolve(settings, profile, f"the series touches {hits[0]}{more}")
    first = settings.build.profiles[0]
    why = "no profile's when_touched matches the series" if files else "no series"
    return resolve(settings, first, f"default ({why})")
