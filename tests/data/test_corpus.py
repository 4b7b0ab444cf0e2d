import hashlib
import json
from pathlib import Path

import pytest

from bisep.cli import run
from bisep.data import corpus as corpus_module
from bisep.data.corpus import CorpusOptions, build_corpus
from bisep.data.format import Dataset
from bisep.data.sources import RenderResources
from bisep.data.sources.general_midi import default_soundfonts

OPTIONS = CorpusOptions(size="tiny", seed=7, clip_seconds=2.0, with_stems=True)


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus") / "tiny"
    manifest = build_corpus(folder, OPTIONS, RenderResources(default_soundfonts()), jobs=2, progress=False)
    return folder, manifest


def test_same_seed_gives_identical_files(built, tmp_path):
    folder, _ = built
    again = tmp_path / "again"
    build_corpus(again, OPTIONS, RenderResources(default_soundfonts()), jobs=1, progress=False)
    assert tree_digest(again) == tree_digest(folder)


def test_other_seed_differs(built, tmp_path):
    folder, _ = built
    other = tmp_path / "other"
    options = CorpusOptions(size="tiny", seed=8, clip_seconds=2.0)
    build_corpus(other, options, RenderResources(default_soundfonts()), jobs=2, progress=False)
    assert (other / "audio/test/test-000000.wav").read_bytes() != (folder / "audio/test/test-000000.wav").read_bytes()


def test_splits_follow_the_method(built):
    folder, manifest = built
    dataset = Dataset.open(folder)
    assert len(manifest["classes"]) >= 24
    for clip_id in dataset.split("train"):
        assert 2 <= len(dataset.clips[clip_id]["sources"]) <= 3
    for split in ("train_sup", "valid", "test"):
        for clip_id in dataset.split(split):
            record = dataset.clips[clip_id]
            assert len(record["labels"]) == 1 and record["phrases"] == [record["sources"][0]["phrase"]]
    for clip_id in dataset.split("grounding") + dataset.split("train"):
        record = dataset.clips[clip_id]
        caption = record["caption"].lower()
        assert all(phrase in caption for phrase in record["phrases"])
        assert sorted(record["phrases"]) == sorted(s["phrase"] for s in record["sources"])
        if len(record["sources"]) > 1:
            assert all((folder / source["stem"]).is_file() for source in record["sources"])


def test_renders_are_disjoint_across_splits(built):
    dataset = Dataset.open(built[0])
    owner = {}
    for split in ("grounding", "train", "train_sup", "valid", "test"):
        for clip_id in dataset.split(split):
            for source in dataset.clips[clip_id]["sources"]:
                assert owner.setdefault(source["render"], split) == split


def test_compositions_mix_different_classes(built):
    dataset = Dataset.open(built[0])
    for name, k in (("test_2", 2), ("test_3", 3), ("test_4", 4), ("valid_2", 2)):
        rows = dataset.compositions(name)
        assert rows
        for _, members in rows:
            labels = [dataset.clips[m]["labels"][0] for m in members]
            assert len(members) == k and len(set(labels)) == k


def test_held_out_phrasings_never_in_captions(built):
    folder, manifest = built
    captions = " ".join(r["caption"].lower() for r in Dataset.open(folder).clips.values())
    for entry in manifest["classes"]:
        assert not set(entry["phrasings"]) & set(entry["held_out_phrasings"])
        for phrase in entry["held_out_phrasings"]:
            assert phrase not in captions


def test_preview_writes_sheet_and_page(built, tmp_path, capsys):
    folder, _ = built
    assert run(["corpus", "preview", str(folder), "--out", str(tmp_path / "p"), "--per-split", "2"]) == 0
    assert (tmp_path / "p" / "contact_sheet.png").stat().st_size > 10_000
    page = (tmp_path / "p" / "index.html").read_text()
    assert page.count("<audio") >= 10 and "../" in page


def test_unavailable_family_is_skipped_and_listed(tmp_path, monkeypatch, capsys):
    from bisep.data.sources import speech

    monkeypatch.setattr(speech, "unavailable_reason", lambda resources: "eSpeak NG library not found")
    manifest = build_corpus(tmp_path / "c", CorpusOptions(size="tiny", clip_seconds=2.0),
                            RenderResources(default_soundfonts()), jobs=1, progress=False)
    assert manifest["skipped_families"]["speech"] == "eSpeak NG library not found"
    assert set(manifest["skipped_families"]) == {"speech", "field_recordings"}  # none given here
    assert "skipping the speech sounds" in capsys.readouterr().err
    assert not any(c["family"] == "speech" for c in manifest["classes"])


def expect_cli_error(args, expected, capsys):
    assert run(args) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and expected in lines[0], lines


def test_bad_soundfonts(tmp_path, capsys):
    expect_cli_error(["corpus", "build", "--out", str(tmp_path / "a"), "--size", "tiny",
                      "--soundfont", str(tmp_path / "none.sf2")], "none.sf2", capsys)
    corrupt = tmp_path / "corrupt.sf2"
    corrupt.write_bytes(b"RIFF" + bytes(range(256)) * 40)
    expect_cli_error(["corpus", "build", "--out", str(tmp_path / "b"), "--size", "tiny",
                      "--soundfont", str(corrupt)], "corrupt.sf2", capsys)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_existing_folder_and_unwritable_target(tmp_path, capsys):
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("mine")
    expect_cli_error(["corpus", "build", "--out", str(existing), "--size", "tiny"], "--overwrite", capsys)
    assert (existing / "keep.txt").read_text() == "mine"
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    expect_cli_error(["corpus", "build", "--out", str(blocker / "corpus"), "--size", "tiny"], "cannot write", capsys)


def test_failed_build_leaves_nothing(tmp_path, monkeypatch):
    def broken(job):
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(corpus_module, "render_clip", broken)
    with pytest.raises(RuntimeError):
        build_corpus(tmp_path / "c", OPTIONS, RenderResources(default_soundfonts()), jobs=1, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_manifest_statistics(built):
    stats = built[1]["stats"]
    assert stats["train"]["sources_per_clip"].keys() <= {2, 3}
    assert 0.29 <= stats["test"]["peak_range"][0] and stats["test"]["peak_range"][1] <= 0.91
    assert json.loads((built[0] / "manifest.json").read_text())["stats"]["test"]["clips"] == stats["test"]["clips"]
