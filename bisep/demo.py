"""``bisep demo``: separate the shipped example mixtures with the shipped model and show how well it did.

For every example (references included; see :mod:`bisep.examples`) it queries each source by its prompt, scores
the estimate against the reference (bss_eval SDR, and its improvement over the unprocessed mixture), and writes
the estimates, the residual and spectrogram PNGs (:mod:`bisep.publish`, as ``bisep serve`` shows them) and one
HTML page with audio players, so a newcomer can listen and look.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

import numpy as np

from bisep.audio import load_audio, save_audio
from bisep.examples import Example, list_examples
from bisep.files import write_json_atomic, write_text_atomic
from bisep.publish import publish_separation


def separate_example(separator, example: Example, out: Path) -> dict:
    """Separate one example, write its files into ``out/<name>/`` and return its scores and file names."""
    from bisep.evaluate.metrics import score_composition

    folder = out / example.name
    mixture, rate = load_audio(example.mixture)
    references = np.stack([load_audio(example.references[prompt])[0][0].numpy() for prompt in example.prompts])
    folder.mkdir(parents=True, exist_ok=True)
    published = publish_separation(separator, example.mixture, example.prompts, folder,
                                   {prompt: (references[slot], rate) for slot, prompt in enumerate(example.prompts)},
                                   audio_format="wav")
    estimates = np.stack([load_audio(folder / track["audio"])[0][0].numpy() for track in published["tracks"]])
    scores = score_composition(references, {"model": estimates}, mixture[0].numpy())
    files = {"mixture": (published["input"]["audio"], published["input"]["spectrogram"])}
    rows = []
    for slot, track in enumerate(published["tracks"]):
        prompt = track["prompt"]
        reference = track["audio"].replace(".wav", ".reference.wav")
        save_audio(folder / reference, references[slot][None], rate)
        files[f"estimate:{prompt}"] = (track["audio"], track["spectrogram"])
        files[f"reference:{prompt}"] = (reference, track["reference_spectrogram"])
        rows.append({"prompt": prompt, "sdr": scores["model"]["sdr"][slot], "sdri": scores["model"]["sdri"][slot],
                     "si_sdri": scores["model"]["si_sdri"][slot], "mixture_sdr": scores["mixture"]["sdr"][slot]})
    files["residual"] = (published["residual"]["audio"], published["residual"]["spectrogram"])
    return {"name": example.name, "caption": example.caption, "rows": rows, "files": files}


def write_page(out: Path, results: list[dict], model_name: str) -> Path:
    """One self-contained HTML page (relative links) with players and spectrograms for every example."""
    parts = ["<!doctype html><meta charset='utf-8'><title>bisep demo</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
             "figure{display:inline-block;margin:4px;vertical-align:top}img{width:420px}"
             "audio{width:420px}td,th{padding:2px 8px}</style>",
             f"<h1>bisep demo</h1><p>Model <code>{html.escape(model_name)}</code>. SDR in dB (bss_eval); SDRi is "
             "the improvement over the unprocessed mixture.</p>"]
    for result in results:
        name = html.escape(result["name"])
        parts.append(f"<h2>{name}</h2><p>{html.escape(result['caption'])}</p><table><tr><th>prompt</th>"
                     "<th>SDR</th><th>SDRi</th></tr>")
        for row in result["rows"]:
            parts.append(f"<tr><td>{html.escape(row['prompt'])}</td><td>{row['sdr']:.1f}</td>"
                         f"<td>{row['sdri']:+.1f}</td></tr>")
        parts.append("</table>")
        for key, (audio_name, picture_name) in result["files"].items():
            parts.append(f"<figure><figcaption>{html.escape(key)}</figcaption>"
                         f"<img src='{name}/{html.escape(picture_name)}' alt='spectrogram of {html.escape(key)}'><br>"
                         f"<audio controls preload='none' src='{name}/{html.escape(audio_name)}'></audio></figure>")
    path = out / "index.html"
    write_text_atomic(path, "\n".join(parts) + "\n")
    return path


def run_demo(out: Path, model: str = "builtin", device: str | None = None, log=print) -> dict:
    from bisep.separator.api import Separator

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    separator = Separator.from_pretrained(model, device=device)
    results = [separate_example(separator, example, out) for example in list_examples()]
    width = max(len(row["prompt"]) for result in results for row in result["rows"])
    names = max(len("example"), *(len(result["name"]) for result in results))
    log(f"{'example':<{names}}  {'prompt':<{width}}  SDR (dB)  SDRi (dB)")
    for result in results:
        for row in result["rows"]:
            log(f"{result['name']:<{names}}  {row['prompt']:<{width}}  {row['sdr']:8.1f}  {row['sdri']:+9.1f}")
    sdri = [row["sdri"] for result in results for row in result["rows"]]
    log(f"mean SDRi over {len(sdri)} sources: {np.mean(sdri):+.2f} dB (median {np.median(sdri):+.2f} dB)")
    page = write_page(out, results, model)
    summary = {"model": model, "examples": results, "mean_sdri": float(np.mean(sdri)),
               "median_sdri": float(np.median(sdri)), "seconds": time.perf_counter() - started}
    write_json_atomic(out / "demo.json", summary)
    log(f"listen and look: {page} (done in {summary['seconds']:.0f} s)")
    return summary
