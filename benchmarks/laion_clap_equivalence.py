"""Does the LAION-CLAP conversion compute what LAION-CLAP computes? Builds LAION's own model (from a copy of
its source you have) at a tiny size with the seeded weights of ``tests/importers/tiny_laion_clap.py``, converts
those weights with :mod:`bisep.importers.laion_clap`, and compares audio embeddings (LAION's torchlibrosa front
end against bisep's), text embeddings and RoBERTa's hidden states at all 77 positions.

    python benchmarks/laion_clap_equivalence.py LAION_CLAP_SOURCE [--write]

LAION_CLAP_SOURCE is the ``clap_module`` folder of LAION-CLAP's code: ``site-packages/laion_clap/clap_module``
of the ``laion-clap`` package, or ``models/laion_clap/clap_module`` in a checkout of the paper authors'
repository. Its modules are imported from there at run time (they need ``torchlibrosa`` and ``librosa``;
``torchvision``, which they import for an unused class, is stood in for when missing). ``--write`` stores the
key list and LAION's outputs in ``tests/importers/data/laion_clap_tiny.json``, which the CI test compares against.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import json
import sys
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "importers"))

from tiny_laion_clap import (  # noqa: E402
    HIDDEN_POSITIONS,
    HIDDEN_WIDTH,
    REFERENCE,
    TEXT_HEADS,
    TINY,
    converted_outputs,
    random_laion_state,
    reference_inputs,
)

from bisep.importers.laion_clap import convert_laion_clap  # noqa: E402


def import_laion(source: Path):
    """LAION's ``model`` and ``htsat`` modules, without running the package's ``__init__`` (which pulls in
    training-only dependencies)."""
    from transformers import BartModel, BertModel, RobertaModel  # noqa: F401  (before any stand-in module)

    try:
        import torchvision  # noqa: F401
    except ImportError:
        names = ("torchvision", "torchvision.ops", "torchvision.ops.misc")
        stand_ins = {name: types.ModuleType(name) for name in names}
        stand_ins["torchvision.ops.misc"].FrozenBatchNorm2d = type("FrozenBatchNorm2d", (), {})
        for name, module in stand_ins.items():
            module.__spec__ = importlib.machinery.ModuleSpec(name, None)
        sys.modules.update(stand_ins)
    package = types.ModuleType("clap_module")
    package.__path__ = [str(source)]
    sys.modules["clap_module"] = package
    return importlib.import_module("clap_module.model"), importlib.import_module("clap_module.htsat")


def build_tiny_laion(model_module, htsat_module):
    from transformers import RobertaConfig, RobertaModel

    roberta = RobertaConfig(**TINY["roberta"], type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
    model_module.RobertaModel.from_pretrained = classmethod(lambda cls, name: RobertaModel(roberta))

    def tiny_htsat(config, enable_fusion=False, fusion_type="None"):
        return htsat_module.HTSAT_Swin_Transformer(
            spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=config.class_num, config=config,
            enable_fusion=False, **TINY["htsat"])

    model_module.create_htsat_model = tiny_htsat
    audio_cfg = dict(audio_length=1024, clip_samples=480000, mel_bins=64, sample_rate=48000, window_size=1024,
                     hop_size=480, fmin=50, fmax=14000, class_num=527, model_type="HTSAT", model_name="tiny")
    text_cfg = dict(context_length=77, vocab_size=TINY["roberta"]["vocab_size"], width=768, heads=TEXT_HEADS,
                    layers=1, model_type="roberta")
    width = TINY["htsat"]["embed_dim"] * 2 ** (len(TINY["htsat"]["depths"]) - 1)
    return model_module.CLAP(embed_dim=width, audio_cfg=audio_cfg, text_cfg=text_cfg,
                             joint_embed_shape=TINY["joint"]).eval()


@torch.no_grad()
def laion_outputs(model, clips, ids, mask) -> dict:
    audio = model.get_audio_embedding([{"waveform": clip, "longer": torch.tensor([False])} for clip in clips])
    text = model.get_text_embedding({"input_ids": ids.clone(), "attention_mask": mask.clone()})
    hidden = model.text_branch(input_ids=ids, attention_mask=mask).last_hidden_state
    return {"audio": audio, "text": text, "hidden": hidden[:, HIDDEN_POSITIONS, :HIDDEN_WIDTH],
            "logit_scale_a": model.logit_scale_a.exp(), "logit_scale_t": model.logit_scale_t.exp()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="LAION-CLAP's clap_module folder")
    parser.add_argument("--write", action="store_true", help=f"store the reference in {REFERENCE.relative_to(ROOT)}")
    args = parser.parse_args()
    laion = build_tiny_laion(*import_laion(args.source.resolve()))
    own = laion.state_dict()
    shapes = {key: list(value.shape) for key, value in own.items()}
    state = random_laion_state(shapes)
    # LAION's STFT is a convolution with fixed DFT weights: keep its own (the converter drops them anyway).
    source_state = {key: own[key] if "spectrogram_extractor" in key else value for key, value in state.items()}
    laion.load_state_dict(source_state, strict=True)
    clips, ids, mask = reference_inputs()
    expected = laion_outputs(laion, clips, ids, mask)
    model, record = convert_laion_clap(state, "tiny LAION-CLAP", text_heads=TEXT_HEADS)
    got = converted_outputs(model, clips, ids, mask)
    print(f"source: {args.source}; {len(state)} LAION tensors -> {record}")
    for name in expected:
        print(f"{name:14s} max abs difference {float((expected[name] - got[name]).abs().max()):.3g}")
    if args.write:
        import transformers

        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        REFERENCE.write_text(json.dumps({
            "made_by": "benchmarks/laion_clap_equivalence.py --write",
            "laion_source": args.source.name, "torch": torch.__version__, "transformers": transformers.__version__,
            "shapes": shapes, "hidden_positions": HIDDEN_POSITIONS, "hidden_width": HIDDEN_WIDTH,
            "outputs": {name: value.tolist() for name, value in expected.items()},
        }, indent=1) + "\n")
        print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
