"""Import the paper authors' released separator (``model_weights.pth.tar``, which their ``demo.py`` loads).

Their checkpoint's ``state_dict`` belongs to a DistributedDataParallel-wrapped network, so every key starts with
``module.``. Below that, bisep's paper preset has the same layout under other prefixes (``AUTHORS_KEY_MAP``):
the conditional U-Net ``net_sound.*`` -> ``unet.*``, the mask head ``net_synthesizer.*`` -> ``synthesizer.*``
and the joint-embedding projection ``net_clap.fc.*`` -> ``text_projection.*``. Their LAION-CLAP sits under
``net_clap.model.model.*`` in LAION's own layout and is converted by :mod:`bisep.importers.laion_clap` unless a
LAION-CLAP is given separately. Everything else in the file (optimizer state, their STFT modules) is left out and
listed in the provenance.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bisep.errors import BisepError
from bisep.files import sha256_file
from bisep.importers.safe_load import DDP_PREFIX, check_shapes, load_checkpoint, state_dict_of
from bisep.model_folder import write_model_folder
from bisep.separator.model import SeparatorConfig, TextQueriedSeparator

AUTHORS_KEY_MAP = {"net_sound.": "unet.", "net_synthesizer.": "synthesizer.", "net_clap.fc.": "text_projection."}
AUTHORS_CLAP_PREFIX = "net_clap.model.model."
CLAP_SUBFOLDER = "clap"
WHAT = "authors' checkpoint"
# The released model's settings (their README's demo command: --cond_layer sca --num_cond_blocks 1
# --num_res_layers 1 --num_head 8 --cond_dim 768 --num_downs 7 --num_channels 32 --audLen 131070 --audRate 16000),
# which are bisep's paper preset. Their cross-attention attends all 77 positions of the padded prompt.
PAPER_SEPARATOR = SeparatorConfig(
    sample_rate=16000, n_fft=1022, hop_length=256, num_downs=7, base_channels=64, out_channels=32,
    conditioning="sca", condition_blocks=1, res_layers=1, heads=8, token_dim=768, embedding_dim=512,
    mask="ratio", attend_padding=True,
)
TRAINING_DATA_NOTE = "not stated by the authors for the released weights"


def bisep_key(authors_key: str) -> str | None:
    """The paper preset's name for one of the authors' separator keys (``module.`` already removed), or None."""
    for prefix, target in AUTHORS_KEY_MAP.items():
        if authors_key.startswith(prefix):
            return target + authors_key[len(prefix):]
    return None


def authors_key(bisep_name: str) -> str:
    """The inverse of :func:`bisep_key`, for messages that name keys as the user's file does."""
    for prefix, target in AUTHORS_KEY_MAP.items():
        if bisep_name.startswith(target):
            return DDP_PREFIX + prefix + bisep_name[len(target):]
    return bisep_name


def split_authors_state(state: dict[str, torch.Tensor]
                        ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], list[str]]:
    """``(separator tensors under bisep's names, LAION-CLAP tensors under LAION's names, other keys)``."""
    separator, clap, other = {}, {}, []
    for key, tensor in state.items():
        if (name := bisep_key(key)) is not None:
            separator[name] = tensor
        elif key.startswith(AUTHORS_CLAP_PREFIX):
            clap[key[len(AUTHORS_CLAP_PREFIX):]] = tensor
        else:
            other.append(key)
    return separator, clap, other


def load_authors_separator(checkpoint: str | Path) -> tuple[TextQueriedSeparator, dict[str, torch.Tensor], dict]:
    """The paper preset with the authors' weights, their LAION-CLAP tensors (may be empty) and a record of what
    went where. Missing, unexpected or wrong-shaped separator keys are a one-line error."""
    checkpoint = Path(checkpoint).expanduser()
    state = state_dict_of(load_checkpoint(checkpoint, WHAT), checkpoint, WHAT)
    separator_state, clap_state, other = split_authors_state(state)
    if not separator_state:
        raise BisepError(f"{WHAT} {checkpoint}: no net_sound/net_synthesizer/net_clap.fc tensors; is it the "
                         "authors' model_weights.pth.tar?")
    model = TextQueriedSeparator(PAPER_SEPARATOR)
    expected = model.state_dict()
    check_shapes(separator_state, expected, checkpoint, WHAT, name_in_source=authors_key)
    model.load_state_dict({key: tensor.to(expected[key].dtype) for key, tensor in separator_state.items()},
                          strict=True)
    record = {
        "key_mapping": {DDP_PREFIX + prefix: target for prefix, target in AUTHORS_KEY_MAP.items()},
        "separator_tensors": len(separator_state),
        "clap_tensors": len(clap_state),
        "left_out": sorted(other),
    }
    return model.eval(), clap_state, record


def import_authors(checkpoint: str | Path, out: str | Path, clap: str | Path | None = None,
                   tokenizer: str | Path | None = None, overwrite: bool = False) -> Path:
    """Write a bisep model folder for the authors' checkpoint; ``Separator.from_pretrained(out)`` loads it.

    The grounding model is ``clap``: a transformers ``ClapModel`` folder (referenced by its absolute path) or a
    LAION-CLAP checkpoint file (converted into ``out/clap``); without it, the LAION-CLAP tensors inside the
    authors' checkpoint are converted. Converting needs the RoBERTa tokenizer files in ``tokenizer``.
    """
    from bisep.importers import laion_clap

    checkpoint, out = Path(checkpoint).expanduser(), Path(out).expanduser()
    if out.exists() and not overwrite:
        raise BisepError(f"{out} exists (pass --overwrite to replace it)")
    model, clap_state, record = load_authors_separator(checkpoint)
    provenance = {
        "source": "authors' released separator (Mahmud et al., ICLR 2024, microsoft/BiModalAudioSeparation)",
        "checkpoint": str(checkpoint.resolve()),
        "checkpoint_sha256": sha256_file(checkpoint),
        "keys": record,
        "training_data": TRAINING_DATA_NOTE,
    }
    converted = None
    if clap is not None and Path(clap).expanduser().is_dir():
        folder = Path(clap).expanduser().resolve()
        _check_grounding_dimensions(folder)
        provenance["grounding"] = f"clap:{folder}"
    else:
        if clap is not None:
            source = Path(clap).expanduser()
            state = laion_clap.read_laion_checkpoint(source)
            provenance["grounding_source"] = {"file": str(source.resolve()), "sha256": sha256_file(source)}
        elif clap_state:
            source, state = checkpoint, clap_state
            provenance["grounding_source"] = {"file": str(checkpoint.resolve()),
                                              "prefix": DDP_PREFIX + AUTHORS_CLAP_PREFIX}
        else:
            raise BisepError(f"{WHAT} {checkpoint}: holds no LAION-CLAP (net_clap.model.*); pass --clap with a "
                             "transformers ClapModel folder or LAION-CLAP's music_audioset_epoch_15_esc_90.14.pt")
        laion_clap.check_tokenizer_folder(tokenizer)
        converted, conversion = laion_clap.convert_laion_clap(state, str(source))
        _check_dimensions(converted.config.projection_dim, converted.config.text_config.hidden_size, str(source))
        provenance["grounding_folder"] = CLAP_SUBFOLDER
        provenance["grounding_source"]["conversion"] = conversion

    def write_clap(staging: Path) -> None:
        if converted is not None:
            laion_clap.save_clap_folder(converted, tokenizer, staging / CLAP_SUBFOLDER)

    return write_model_folder(out, model, PAPER_SEPARATOR, provenance, extra=write_clap)


def _check_dimensions(embedding_dim: int, token_dim: int, source: str) -> None:
    if (embedding_dim, token_dim) != (PAPER_SEPARATOR.embedding_dim, PAPER_SEPARATOR.token_dim):
        raise BisepError(f"{source}: a CLAP with a {embedding_dim}-d joint space and {token_dim}-d text tokens; the "
                         f"authors' separator needs {PAPER_SEPARATOR.embedding_dim} and {PAPER_SEPARATOR.token_dim} "
                         "(LAION-CLAP HTSAT-base + RoBERTa, unfused)")


def _check_grounding_dimensions(folder: Path) -> None:
    from bisep.grounding.clap import load_clap

    grounding = load_clap(folder)
    _check_dimensions(grounding.embedding_dim, grounding.token_dim, str(folder))
