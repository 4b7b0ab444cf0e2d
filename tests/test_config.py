from dataclasses import dataclass, field
from typing import Literal

import pytest

from bisep.config import load_config
from bisep.errors import ConfigError


@dataclass
class Optimiser:
    lr: float = 1e-4
    kind: Literal["adam", "sgd"] = "adam"


@dataclass
class Example:
    name: str
    steps: int = 10
    optimiser: Optimiser = field(default_factory=Optimiser)
    tags: list[str] = field(default_factory=list)
    seed: int | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\noptimiser:\n  lr: 0.001\n")
    config = load_config(Example, path, ["steps=20", "optimiser.kind=sgd", "tags=[a, b]", "seed=3"])
    assert config == Example("demo", 20, Optimiser(0.001, "sgd"), ["a", "b"], 3)


def test_unknown_and_mistyped_keys_are_listed(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\nstepz: 3\noptimiser:\n  lr: fast\n  momentum: 0.9\n")
    with pytest.raises(ConfigError) as error:
        load_config(Example, path)
    message = str(error.value)
    assert "stepz" in message and "optimiser.momentum" in message
    assert "\n" not in message


def test_wrong_types_and_missing_keys():
    with pytest.raises(ConfigError, match="optimiser.lr must be a number"):
        load_config(Example, None, ["name=x", "optimiser.lr=fast"])
    with pytest.raises(ConfigError, match="missing required key name"):
        load_config(Example, None, [])
    with pytest.raises(ConfigError, match="must be one of"):
        load_config(Example, None, ["name=x", "optimiser.kind=rmsprop"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Example, None, ["name"])


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Example, tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(Example, tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Example, tmp_path / "list.yaml")


def test_exponent_notation_without_a_dot_is_a_number(tmp_path):
    # PyYAML (YAML 1.1) reads 3e-4 as a string; users write it in overrides and config files alike
    path = tmp_path / "c.yaml"
    path.write_text("name: demo\noptimiser:\n  lr: 1e-3\n")
    assert load_config(Example, path).optimiser.lr == pytest.approx(1e-3)
    assert load_config(Example, None, ["name=x", "optimiser.lr=5e-4"]).optimiser.lr == pytest.approx(5e-4)
    for bad in ("nan", "inf", "5e-4x"):
        with pytest.raises(ConfigError, match="must be a number"):
            load_config(Example, None, ["name=x", f"optimiser.lr={bad}"])


def test_yaml_nan_and_infinity_are_refused(tmp_path):
    path = tmp_path / "c.yaml"
    for bad in (".nan", ".inf", "-.inf"):
        path.write_text(f"name: demo\noptimiser:\n  lr: {bad}\n")
        with pytest.raises(ConfigError, match="optimiser.lr must be a finite number"):
            load_config(Example, path)
        with pytest.raises(ConfigError, match="must be a finite number"):
            load_config(Example, None, ["name=x", f"optimiser.lr={bad}"])
