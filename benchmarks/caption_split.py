"""Phrase-level precision and recall of the caption parser on the held-out captions of issue #22.

    python benchmarks/caption_split.py [--show-errors]

The set (benchmarks/data/caption_split_heldout.json) was written after the parser's rules were committed and
is scored as it stands: it estimates how the rules do on captions nobody tuned them on, so do not change the
rules to fit it. Figures are given for the whole set and for each group ("coordinated": one subject with two or
more verbs; "other": no such coordination, or a tricky "and").
"""

import json
import sys
from pathlib import Path

from bisep.data.phrases import evaluate_parser, normalise_phrase, parse_caption

HELD_OUT = Path(__file__).with_name("data") / "caption_split_heldout.json"

if __name__ == "__main__":
    if set(sys.argv[1:]) - {"--show-errors"}:
        raise SystemExit(__doc__)
    cases = json.loads(HELD_OUT.read_text())["cases"]
    groups = {"all": cases} | {group: [c for c in cases if c["group"] == group]
                                for group in sorted({c["group"] for c in cases})}
    for name, members in groups.items():
        scores = evaluate_parser((c["caption"], c["phrases"]) for c in members)
        print(f"{name}: {len(members)} captions, {sum(len(c['phrases']) for c in members)} expected phrases, "
              f"precision {scores['precision']:.3f}, recall {scores['recall']:.3f}")
    if "--show-errors" in sys.argv:
        for case in cases:
            predicted = parse_caption(case["caption"])
            if sorted(map(normalise_phrase, predicted)) != sorted(map(normalise_phrase, case["phrases"])):
                print(f"{case['caption']!r}: expected {case['phrases']}, got {predicted}")
