"""Config dataclasses <-> command-line flags."""
import math
from dataclasses import dataclass, field
from typing import List

import pytest

from tf_inc.cli import parse_config


@dataclass
class Demo:
    """demo"""

    n: int = field(default=3, metadata={"help": "count"})
    lr: float = 0.1
    flag: bool = True
    eps: List[float] = field(default_factory=lambda: [0.1, 0.2])
    eta: float = math.inf
    name: str = "x"


def test_defaults_are_the_dataclass_defaults():
    assert parse_config(Demo, []) == Demo()


def test_every_field_is_a_flag():
    cfg = parse_config(Demo, ["--n", "5", "--lr", "0.5", "--flag", "false", "--eps", "0", "0.3",
                              "--eta", "8", "--name", "y"])
    assert cfg == Demo(n=5, lr=0.5, flag=False, eps=[0.0, 0.3], eta=8.0, name="y")


def test_bad_value_is_a_clear_error(capsys):
    with pytest.raises(SystemExit):
        parse_config(Demo, ["--n", "many"])
    assert "invalid int value" in capsys.readouterr().err


def test_train_entry_lists_models(capsys):
    from tf_inc.training.cli import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for m in ("mnist-classifier", "vae", "celeba-classifier", "began", "robust-classifier"):
        assert m in out
    assert main(["nonsense"]) == 2


def test_choices_apply_to_list_flags_too():
    @dataclass
    class WithChoices:
        kinds: List[str] = field(default_factory=lambda: ["a"], metadata={"choices": ["a", "b"]})

    assert parse_config(WithChoices, ["--kinds", "b", "a"]).kinds == ["b", "a"]
    with pytest.raises(SystemExit):
        parse_config(WithChoices, ["--kinds", "a", "c"])
