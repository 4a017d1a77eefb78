"""Attack scripts end to end on the session's small MNIST models, and the CelebA path on fixtures."""
import numpy as np
import pytest

from tests.scripts.helpers import run_script

pytestmark = pytest.mark.slow
INC_FAST = ["--steps", "150", "--restarts", "1"]


@pytest.fixture(scope="module")
def models(trained_classifier, trained_vae, isolated_models_dir):
    return isolated_models_dir


def test_table1_mnist(models, tmp_path):
    args = ["--n", "12", "--cw-iterations", "100", "--cw-binary-steps", "3", "--cw-learning-rate", "0.05",
            "--cw-l0-outer-steps", "2", "--cw-linf-outer-steps", "2", *INC_FAST, "--run-dir", str(tmp_path / "run")]
    rec, stdout = run_script("table1_attacks", args, models, tmp_path / "a")
    assert "resumed" not in stdout
    m = rec["metrics"]
    for attack in ("clean", "fgsm_0.05", "fgsm_0.1", "fgsm_0.2", "cw_l2", "cw_l0", "cw_linf"):
        assert 0.0 <= m[f"{attack}/classifier_acc"] <= 1.0 and 0.0 <= m[f"{attack}/inc_acc"] <= 1.0
    assert m["clean/classifier_acc"] > 0.9
    assert m["fgsm_0.2/inc_acc"] > m["fgsm_0.2/classifier_acc"]
    assert m["cw_l2/classifier_acc"] < 0.3
    assert rec["paper"] == {}                       # the paper's Table 1 is CelebA
    assert rec["config"]["cw_l0_outer_steps"] == 2 and rec["config"]["cw_linf_outer_steps"] == 2
    # --run-dir: a rerun loads every attack's examples and the inversion's chunks instead of recomputing
    rec2, stdout2 = run_script("table1_attacks", args, models, tmp_path / "b")
    for name in ("fgsm", "cw_l2", "cw_l0", "cw_linf"):
        assert f"[table1_attacks] {name}: resumed from" in stdout2
    assert "chunks done" in stdout2
    assert rec2["metrics"] == m and rec2["runtime_s"] < rec["runtime_s"]


def test_figure4_mnist(models, tmp_path):
    rec, _ = run_script("figure4_reconstructions", ["--n", "6", *INC_FAST], models, tmp_path)
    m = rec["metrics"]
    assert len(m["confidence_x"]) == 6 and m["eps"] == 0.2
    assert np.mean(m["confidence_g_z_adv"]) > np.mean(m["confidence_x_adv"])


def test_bpda_mnist(models, tmp_path):
    rec, _ = run_script("bpda_attack", ["--n", "12", "--linf", "0.1", "0.3", "--l2", "4.0",
                                        "--nb-iter", "3", "--attack-steps", "40", "--eval-steps", "150",
                                        "--eval-restarts", "1"], models, tmp_path)
    m = rec["metrics"]
    assert set(m) == {"clean", "linf_0.1", "linf_0.3", "l2_4.0"}
    assert m["linf_0.3"] < m["clean"]                   # the adaptive attack hurts INC
    assert rec["paper"] == {"l2_4.0": 0.55}


def test_figure5_mnist(models, tmp_path):
    rec, _ = run_script("figure5_substitute", ["--n", "30", "--n-substitute", "150", "--substitute-epochs", "3",
                                               "--jacobian-rounds", "1", "--eps", "0.05", "0.2", *INC_FAST],
                        models, tmp_path)
    m = rec["metrics"]
    for k in ("fgsm_0.05", "fgsm_0.2", "bim_0.05", "bim_0.2"):
        assert 0.0 <= m[f"{k}/transfer_rate"] <= 1.0
    assert m["bim_0.2/substitute_success"] > 0.5


def test_figure12_mnist(models, tmp_path):
    rec, _ = run_script("figure12_combined_attack", ["--n", "30", "--eps", "0", "0.2", *INC_FAST], models, tmp_path)
    m = rec["metrics"]
    assert m["encoder"] == "vae"
    assert m["autoencoder_acc"][1] < m["autoencoder_acc"][0]
    assert m["inc_acc"][1] > m["autoencoder_acc"][1]       # does not transfer to INC
