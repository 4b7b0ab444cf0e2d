"""Named models, resolved to a model folder: shipped ones checked against their checksums, and a tiny random
one built on first use for tests.

``bisep/assets/registry.json`` maps ``kind/name`` (``grounding/builtin``, ``separator/builtin``) to a folder
under ``bisep/assets`` and the SHA-256 of every file in it; ``register_asset`` writes both when a trained model
is shipped. ``separator/unittest`` has seeded random weights and is written to a temporary folder, so it loads
through the same code as a shipped model while tests drive the whole CLI in seconds.
"""

from __future__ import annotations

import atexit
import importlib
import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from bisep.errors import BisepError
from bisep.files import sha256_file, write_json_atomic

ASSETS = Path(__file__).resolve().parent / "assets"
REGISTRY = ASSETS / "registry.json"


def _registry() -> dict:
    return json.loads(REGISTRY.read_text()) if REGISTRY.is_file() else {}


def known_names(kind: str) -> list[str]:
    names = set(_registry()) | set(BUILT_ON_FIRST_USE)
    return sorted(key.split("/", 1)[1] for key in names if key.startswith(f"{kind}/"))


def asset_folder(kind: str, name: str) -> Path:
    """The folder of a named model; a shipped model's missing or altered file is an error, never a silent
    load."""
    if f"{kind}/{name}" in BUILT_ON_FIRST_USE:
        return _built_folder(f"{kind}/{name}")
    entry = _registry().get(f"{kind}/{name}")
    if entry is None:
        known = ", ".join(known_names(kind)) or "none shipped in this install"
        raise BisepError(f"unknown {kind} model '{name}' (known: {known}; or give a folder path)")
    folder = ASSETS / entry["folder"]
    for file_name, expected in entry["sha256"].items():
        path = folder / file_name
        if not path.is_file():
            raise BisepError(f"{kind} model '{name}': {path} is missing; reinstall bisep")
        if sha256_file(path) != expected:
            raise BisepError(f"{kind} model '{name}': {path} does not match its checksum; reinstall bisep")
    return folder


def register_asset(kind: str, name: str, source: Path) -> Path:
    """Copy a trained model folder into the package assets and record its files' checksums."""
    folder = ASSETS / kind / name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    checksums = {}
    for path in sorted(source.iterdir()):
        if path.is_file():
            shutil.copy2(path, folder / path.name)
            checksums[path.name] = sha256_file(folder / path.name)
    registry = _registry()
    registry[f"{kind}/{name}"] = {"folder": f"{kind}/{name}", "sha256": checksums}
    write_json_atomic(REGISTRY, registry)
    return folder


# name -> "module:function" writing the model into a folder, imported on first use: the registry (imported by
# the grounding and separator packages) imports neither of them
BUILT_ON_FIRST_USE: dict[str, str] = {"separator/unittest": "bisep.separator.unittest_model:write_unittest_separator"}
_built: dict[str, Path] = {}


def _built_folder(key: str) -> Path:
    """Write a built-on-first-use model once per process, into a temporary folder removed at exit."""
    if key not in _built:
        root = Path(tempfile.mkdtemp(prefix="bisep-models-"))
        atexit.register(shutil.rmtree, root, True)
        module, function = BUILT_ON_FIRST_USE[key].split(":")
        builder: Callable[[Path], Path] = getattr(importlib.import_module(module), function)
        _built[key] = builder(root / key.replace("/", "-"))
    return _built[key]
