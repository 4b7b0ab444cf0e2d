"""Seconds per grounding training step with and without rewording, in the same run of this script.

    python benchmarks/grounding_rewording_cost.py corpus/small [steps]

Each recipe trains ``steps`` steps (default 60) from scratch with the shipped defaults, ``rewording`` 0 then 0.5,
and validates once at the end; the totals compare the cost of the extra texts rewording gives the frozen
sentence encoder to encode.
"""

import sys
import tempfile

from bisep.train.grounding import GroundingTrainingConfig, train_grounding

if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        raise SystemExit(__doc__)
    corpus, steps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) == 3 else 60
    for rewording in (0.0, 0.5):
        config = GroundingTrainingConfig(steps=steps, validate_every=10 * steps, rewording=rewording)
        with tempfile.TemporaryDirectory() as out:
            result = train_grounding(corpus, out, config, log=lambda *_: None)
        print(f"rewording={rewording}: {steps} steps in {result['seconds']:.1f} s "
              f"({result['seconds'] / steps:.2f} s per step, loading and one validation included)")
