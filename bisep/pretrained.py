"""Pretrained things that ship inside the package, resolved by name and checked against their checksums.

``bisep/assets/registry.json`` maps ``kind/name`` (``grounding/builtin``, ``separator/builtin``) to a folder
under ``bisep/assets`` and the SHA-256 of every file in it; ``register_asset`` writes both when a trained model
is shipped.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bisep.errors import BisepError
from bisep.files import sha256_file, write_json_atomic

ASSETS = Path(__file__).resolve().parent / "assets"
REGISTRY = ASSETS / "registry.json"


def _registry() -> dict:
    return json.loads(REGISTRY.read_text()) if REGISTRY.is_file() else {}


def known_names(kind: str) -> list[str]:
    return sorted(key.split("/", 1)[1] for key in _registry() if key.startswith(f"{kind}/"))


def asset_folder(kind: str, name: str) -> Path:
    """The checked folder of a shipped model; a missing or altered file is an error, never a silent load."""
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
