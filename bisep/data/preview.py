"""Look at and listen to a dataset: a PNG contact sheet of spectrograms and an HTML page of audio players."""

from __future__ import annotations

import html
import os
import textwrap
from pathlib import Path

from bisep.audio import load_audio
from bisep.data.format import Dataset
from bisep.files import write_text_atomic
from bisep.plots import draw_spectrogram, new_figure, save_figure


def write_preview(folder: str | Path, out: str | Path, per_split: int = 6) -> tuple[Path, Path]:
    """Contact sheet ``out/contact_sheet.png`` and page ``out/index.html`` for the first clips of each split."""
    dataset = Dataset.open(folder)
    out = Path(out)
    split_names = sorted(p.stem for p in (dataset.root / "splits").glob("*.csv"))
    chosen = [(split, clip_id) for split in split_names for clip_id in dataset.split(split)[:per_split]]
    columns = 3
    rows = max(1, -(-len(chosen) // columns))
    figure, axes = new_figure(rows, columns, size=(5.2 * columns, 2.6 * rows))
    for axis in axes.flat:
        axis.set_axis_off()
    for axis, (split, clip_id) in zip(axes.flat, chosen):
        waveform, rate = load_audio(dataset.audio_path(clip_id), channels=1)
        axis.set_axis_on()
        title = "\n".join(textwrap.wrap(f"[{split}] {dataset.clips[clip_id]['caption']}", 58))
        draw_spectrogram(axis, waveform.numpy(), rate, title, fontsize=7)
    sheet = save_figure(figure, out / "contact_sheet.png", dpi=90)

    rows_html = []
    for split, clip_id in chosen:
        record = dataset.clips[clip_id]
        players = [_player(dataset.root / record["audio"], out, "mixture")]
        players += [_player(dataset.root / source["stem"], out, source["label"])
                    for source in record.get("sources", []) if source.get("stem")]
        rows_html.append(
            f"<tr><td>{html.escape(split)}</td><td>{html.escape(clip_id)}</td>"
            f"<td>{html.escape(record['caption'])}<br><small>phrases: "
            f"{html.escape(' | '.join(record['phrases']))}<br>labels: {html.escape(', '.join(record['labels']))}"
            f"</small></td><td>{''.join(players)}</td></tr>"
        )
    page = out / "index.html"
    write_text_atomic(page, f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(str(dataset.root))}: preview</title>
<style>body{{font-family:sans-serif;margin:1.5em}} td{{border-top:1px solid #ccc;padding:.4em;vertical-align:top}}
audio{{display:block;height:2em;margin:.2em 0}} img{{max-width:100%}}</style></head><body>
<h1>{html.escape(dataset.root.name)}</h1>
<img src="{html.escape(sheet.name)}" alt="spectrograms of the clips below">
<table><tr><th>split</th><th>id</th><th>caption</th><th>listen</th></tr>
{chr(10).join(rows_html)}
</table></body></html>
""")
    return sheet, page


def _player(audio: Path, page_folder: Path, label: str) -> str:
    source = os.path.relpath(audio, page_folder)
    return f'<label>{html.escape(label)}<audio controls preload="none" src="{html.escape(source)}"></audio></label>'
