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
    rec, _ = run_script("table1_attacks", ["--n", "24", "--cw-iterations", "100", "--cw-binary-steps", "4",
                                           "--cw-learning-rate", "0.05", *INC_FAST], models, tmp_path)
    m = rec["metrics"]
    for attack in ("clean", "fgsm_0.05", "fgsm_0.1", "fgsm_0.2", "cw_l2", "cw_l0", "cw_linf"):
        assert 0.0 <= m[f"{attack}/classifier_acc"] <= 1.0 and 0.0 <= m[f"{attack}/inc_acc"] <= 1.0
    assert m["clean/classifier_acc"] > 0.9
    assert m["fgsm_0.2/inc_acc"] > m["fgsm_0.2/classifier_acc"]
    assert m["cw_l2/classifier_acc"] < 0.3
    assert rec["paper"] == {}                       # the paper's Table 1 is CelebA


def test_figure4_mnist(models, tmp_path):
    rec, _ = run_script("figure4_reconstructions", ["--n", "6", *INC_FAST], models, tmp_path)
    m = rec["metrics"]
    assert len(m["confidence_x"]) == 6 and m["eps"] == 0.2
    assert np.mean(m["confidence_g_z_adv"]) > np.mean(m["confidence_x_adv"])


def test_bpda_mnist(models, tmp_path):
    rec, _ = run_script("bpda_attack", ["--n", "12", "--linf", "0.1", "0.3", "--l2-normalised", "0.005",
                                        "--nb-iter", "3", "--attack-steps", "40", "--eval-steps", "150",
                                        "--eval-restarts", "1"], models, tmp_path)
    m = rec["metrics"]
    assert set(m) == {"clean", "linf_0.1", "linf_0.3", "l2_0.005"}
    assert m["linf_0.3"] < m["clean"]                   # the adaptive attack hurts INC
    assert rec["paper"] == {"l2_0.005": 0.55}


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


def test_celeba_path_on_fixtures(tmp_path):
    """Table 1 with --dataset celeba on fixture files and tiny CelebA models."""
    from began.model import build_generator
    from tests.data.celeba_fixture import make_celeba
    from tf_inc.models import celeba_classifier

    root = tmp_path / "celeba"
    make_celeba(root, n=24)
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    clf = celeba_classifier()
    clf.save(models_dir / "celeba_classifier.keras")
    build_generator(z_dim=16, hidden=8, convs_per_block=1).save(models_dir / "celeba_generator.keras")
    rec, out = run_script("table1_attacks", ["--dataset", "celeba", "--n", "4", "--steps", "5", "--restarts", "1",
                                             "--cw-iterations", "3", "--cw-binary-steps", "1"],
                          models_dir, tmp_path / "out", extra_env={"TF_INC_CELEBA": str(root)})
    assert rec["dataset"] == "celeba"
    assert rec["paper"]["fgsm_0.05/inc_acc"] == 0.82
    assert "clean/inc_acc" in rec["metrics"]


def test_celeba_without_data_says_what_to_put_where(tmp_path):
    import os
    import subprocess
    import sys

    from tests.scripts.helpers import REPO

    env = dict(os.environ, TF_INC_MODELS=str(tmp_path / "models"), TF_INC_CELEBA=str(tmp_path / "none"),
               TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "scripts/table1_attacks.py", "--dataset", "celeba", "--out",
                           str(tmp_path)], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    err = proc.stderr
    assert "CelebA not found" in err and "list_attr_celeba.txt" in err and "img_align_celeba" in err
