import pytest
import torch

from bisep.errors import BisepError
from bisep.train.training_state import TRAINING_STATE_KEYS, read_training_state


def test_a_state_lacking_keys_is_refused_by_name(tmp_path):
    torch.save({"optimizer": {}, "epoch": 3}, tmp_path / "state.pt")
    with pytest.raises(BisepError, match="not a bisep training state .missing scheduler, scaler"):
        read_training_state(tmp_path)


def test_a_state_that_is_not_a_mapping_is_refused(tmp_path):
    torch.save([1, 2, 3], tmp_path / "state.pt")
    with pytest.raises(BisepError, match="not a bisep training state"):
        read_training_state(tmp_path)


def test_a_complete_state_loads(tmp_path):
    state = {key: 0 for key in TRAINING_STATE_KEYS}
    torch.save(state, tmp_path / "state.pt")
    assert read_training_state(tmp_path) == state
