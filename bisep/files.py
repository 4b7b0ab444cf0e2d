"""Files: atomic writes (a reader never sees half a file, a failed write never destroys the old one) and the
names bisep gives the files it writes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, Sequence

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is renamed over ``path``, on failure removed.

    The temporary file keeps the destination's suffix so that writers which infer the format from the name
    (soundfile, safetensors) behave the same.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        with open(temporary_path, "rb+") as written:
            os.fsync(written.fileno())
        os.chmod(temporary_path, 0o666 & ~_UMASK)  # mkstemp creates 0600; give the usual permissions
        os.replace(temporary_path, path)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """JSON with sorted keys and a trailing newline, so equal data give byte-identical files."""
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, read in 1 MiB blocks (soundfonts and weights can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def replace_folder(staging: str | Path, target: str | Path) -> Path:
    """Put a fully written ``staging`` folder at ``target`` (its sibling), replacing any folder there: the old
    one is renamed aside first and removed last, so ``target`` never holds a half-written tree."""
    staging, target = Path(staging), Path(target)
    retired = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
    return target


STEM_CHARACTERS = 60  # file systems allow 255 bytes; prompts can be long sentences


def slug(text: str) -> str:
    """Lower-case letters and digits joined by hyphens: safe in file names and URLs on every system."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "sound"


def output_stems(prompts: Sequence[str], reserved: Sequence[str] = ("input", "mixture", "residual")) -> dict[str, str]:
    """The file stem of each prompt's output: its slug, cut to ``STEM_CHARACTERS``. Where two prompts would share
    a stem, or a prompt would take a ``reserved`` one, each of those gets its 1-based position in front
    (``1-a-dog``, ``2-a-dog``), so no output overwrites another."""
    stems = {prompt: slug(prompt)[:STEM_CHARACTERS].strip("-") for prompt in prompts}
    taken = list(stems.values()) + list(reserved)
    return {prompt: f"{index + 1}-{stem}"[:STEM_CHARACTERS] if taken.count(stem) > 1 else stem
            for index, (prompt, stem) in enumerate(stems.items())}


def mirrored_folders(files: Sequence[Path]) -> list[Path]:
    """The output folder of each input file, relative to the output root: its path below the folder all inputs
    share, with its stem slugged and its extension dropped (``a/take.wav`` and ``b/take.wav`` give ``a/take``
    and ``b/take``). Inputs that would still share a folder (``song.wav``, ``song.flac``) keep their extension
    (``song.wav``, ``song.flac``), so no input's outputs replace another's."""
    resolved = [Path(os.path.abspath(path)) for path in files]
    common = Path(os.path.commonpath([path.parent for path in resolved])) if resolved else Path()
    folders = [path.parent.relative_to(common) / slug(path.stem) for path in resolved]
    clashing = {folder for folder in folders if folders.count(folder) > 1}
    named = [folder.parent / f"{folder.name}.{slug(path.suffix)}" if folder in clashing and path.suffix else folder
             for folder, path in zip(folders, resolved)]
    seen: dict[Path, int] = {}
    unique = []
    for folder in named:  # the same name in other letter cases: number them
        seen[folder] = seen.get(folder, 0) + 1
        unique.append(folder if seen[folder] == 1 else folder.parent / f"{folder.name}-{seen[folder]}")
    return unique
