"""Debian package facts that corpus and validation-set provenance rest on: which package owns a file, and which
version of a package is installed (``dpkg-query``; absent off Debian, then unknown)."""

from __future__ import annotations

import functools
import shutil
import subprocess


@functools.lru_cache(maxsize=4096)
def package_owner(path: str) -> str | None:
    """The package that installed ``path`` (an absolute path), or None."""
    if shutil.which("dpkg-query") is None:
        return None
    try:
        result = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0 or ":" not in result.stdout:
        return None
    return result.stdout.split(":", 1)[0].split(",")[0].strip()


def package_version(package: str) -> str:
    """The installed version of ``package``, ``not installed``, or ``unknown (no dpkg-query)``."""
    if shutil.which("dpkg-query") is None:
        return "unknown (no dpkg-query)"
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 and result.stdout.strip() else "not installed"
