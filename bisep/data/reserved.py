"""Sound packages reserved for independent evaluation: no corpus, validation set or choice may read them.

bisep is judged on held-out real audio from these Debian packages; training or even choosing a recipe on them
would make that judgement worthless. Every builder passes each user-given or discovered source path through
:func:`refuse_reserved`, which recognises a reserved file by the package that owns it (``dpkg -S``) and, where
dpkg does not know the file (a copy, another distribution), by the folder and file names these packages use.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path

from bisep.data.debian import package_owner
from bisep.errors import BisepError

RESERVED_PACKAGES = ("asterisk-core-sounds-en*", "sonic-pi-samples", "sound-theme-freedesktop",
                     "musescore-general-soundfont*")
RESERVED_PATH_PATTERNS = (  # where those packages install, or names their files keep when copied
    "*/asterisk/sounds/*", "*/sonic-pi/*", "*/sounds/freedesktop/*", "*musescore_general*", "*musescore-general*",
)


class ReservedSource(BisepError):
    """A source file that belongs to a package reserved for independent evaluation."""


def reserved_package(path: str | Path) -> str | None:
    """The reserved package (or path pattern) ``path`` belongs to, or None."""
    resolved = Path(path).expanduser().resolve()
    owner = package_owner(str(resolved))
    if owner and any(fnmatch.fnmatch(owner, pattern) for pattern in RESERVED_PACKAGES):
        return owner
    lowered = str(resolved).lower()
    for pattern in RESERVED_PATH_PATTERNS:
        if fnmatch.fnmatch(lowered, pattern):
            return f"files matching {pattern!r}"
    return None


def refuse_reserved(path: str | Path) -> Path:
    """``path`` unchanged, or :class:`ReservedSource` if it belongs to a reserved package."""
    owner = reserved_package(path)
    if owner:
        raise ReservedSource(f"{path}: belongs to {owner}, which is reserved for independent evaluation and is "
                             "never used for training, validation or choices")
    return Path(path)
