"""Listen to and look at the best and worst compositions: wav files and a spectrogram sheet for each.

The estimates are not kept during the run (a thousand compositions would not fit in memory); the chosen
compositions are separated again, which gives the same audio because evaluation is deterministic.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bisep.audio import save_audio
from bisep.evaluate.estimators import run_estimators
from bisep.evaluate.plots import spectrogram_sheet
from bisep.files import slug


def write_examples(folder: Path, results: dict, method: str, compositions, estimators, count: int) -> list[dict]:
    """Write ``count`` best and ``count`` worst compositions by ``method``'s mean SDRi into ``folder``:
    ``mixture.wav``, ``<slot>-reference.wav``, ``<slot>-<method>.wav`` and ``spectrograms.png`` each."""
    ranking = sdri_ranking(results["records"], method)
    best = ranking[:count]
    worst = [item for item in ranking[::-1][:count] if all(item[1] is not b[1] for b in best)]
    by_id = {c.id: c for c in compositions.compositions}
    rate = compositions.sample_rate
    written = []
    for label, chosen in (("best", best), ("worst", worst)):
        for rank, (sdri, record) in enumerate(chosen, 1):
            composition = by_id[record["id"]]
            loaded = compositions.load(composition)
            estimates = run_estimators(estimators, composition, loaded, rate)[method]
            target = folder / f"{label}-{rank}-{slug(record['id'])}"
            save_audio(target / "mixture.wav", loaded.mixture, rate)
            rows = []
            for slot, prompt in enumerate(composition.prompts):
                save_audio(target / f"{slot + 1}-reference.wav", loaded.references[slot], rate)
                save_audio(target / f"{slot + 1}-{slug(method)}.wav", estimates[slot], rate)
                scores = record["scores"][method]
                rows.append((f"{slot + 1}: {prompt}", [
                    ("reference", loaded.references[slot]),
                    (f"{method}: SDR {scores['sdr'][slot]:.1f} dB, SDRi {scores['sdri'][slot]:.1f} dB",
                     estimates[slot])]))
            spectrogram_sheet(target / "spectrograms.png", f"{label} {rank}: {record['id']} (mean SDRi {sdri:.2f} dB)",
                              loaded.mixture, rows, rate)
            written.append({"rank": f"{label} {rank}", "id": record["id"], "prompts": record["prompts"],
                            "sdri": round(sdri, 6), "folder": str(target.relative_to(folder.parent))})
    return written


def sdri_ranking(records: list[dict], method: str) -> list[tuple[float, dict]]:
    """Scored compositions sorted by ``method``'s mean SDRi, best first (ties by id, so the order is stable)."""
    ranked = [(float(np.mean(r["scores"][method]["sdri"])), r) for r in records if "scores" in r]
    return sorted(ranked, key=lambda item: (-item[0], item[1]["id"]))
