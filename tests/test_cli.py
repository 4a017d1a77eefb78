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


# --------------------------------------------------------------------------- bad flags, every script
def _experiment_configs():
    import dataclasses
    import importlib
    import pkgutil

    import tf_inc.experiments as E

    found = []
    for m in pkgutil.iter_modules(E.__path__):
        mod = importlib.import_module(f"tf_inc.experiments.{m.name}")
        for name, c in vars(mod).items():
            if (isinstance(c, type) and dataclasses.is_dataclass(c) and name.endswith("Config")
                    and c.__module__ == mod.__name__):
                found.append(c)
    from began.train import BEGANConfig
    from tf_inc.defences.adversarial_training import AdversarialTrainingConfig
    from tf_inc.defences.robust_training import RobustTrainingConfig
    from tf_inc.training.classifier import CelebAClassifierConfig, MnistClassifierConfig
    from vae.model import VAEConfig

    return found + [BEGANConfig, AdversarialTrainingConfig, RobustTrainingConfig, CelebAClassifierConfig,
                    MnistClassifierConfig, VAEConfig]


def test_every_config_default_is_valid_and_bad_counts_are_refused_before_running(capsys):
    import dataclasses

    from tf_inc.cli import parse_config, validate_config

    configs = _experiment_configs()
    assert len(configs) >= 15
    for cls in configs:
        assert validate_config(cls()) == [], cls.__name__
        fields = {f.name for f in dataclasses.fields(cls)}
        for flag, bad in (("n", "0"), ("seed", "-1"), ("learning_rate", "-0.1"), ("steps", "-3")):
            if flag not in fields:
                continue
            with pytest.raises(SystemExit) as e:
                parse_config(cls, [f"--{flag.replace('_', '-')}", bad])
            assert e.value.code == 2
            err = capsys.readouterr().err
            assert "error:" in err and (f"--{flag.replace('_', '-')} must be" in err or f"{flag}:" in err), \
                (cls.__name__, flag, err[-300:])


def test_nan_and_inf_flags_are_refused(capsys):
    from tf_inc.cli import parse_config
    from tf_inc.experiments.figure3_mnist_fgsm import Figure3Config

    for argv, msg in ((["--eps", "0.1", "nan"], "--eps is NaN"), (["--learning-rate", "inf"], "must be finite")):
        with pytest.raises(SystemExit):
            parse_config(Figure3Config, argv)
        assert msg in capsys.readouterr().err
    assert parse_config(Figure3Config, ["--eta", "inf"]).eta == float("inf")      # inf is eta's default


def test_script_input_error_is_one_line_and_exit_2(tmp_path):
    import os
    import subprocess
    import sys

    from tf_inc.paths import REPO_ROOT

    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_INC_MODELS=str(tmp_path / "none"))
    proc = subprocess.run([sys.executable, "scripts/figure3_mnist_fgsm.py", "--n", "0", "--out", str(tmp_path)],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "--n must be ≥ 1, got 0" in proc.stderr
    assert "Traceback" not in proc.stderr
