"""Every paper script with ``--dataset celeba``, end to end on fixture files in the real
CelebA formats and tiny (untrained) CelebA models: the CelebA configuration shares the
MNIST code paths, and this catches what differs (value range [-1, 1], 64×64×3 shapes,
the conv encoder, a generator without output squashing)."""
import numpy as np
import pytest

from tests.scripts.helpers import run_script, run_script_failing

pytestmark = pytest.mark.slow
INC = ["--steps", "5", "--restarts", "1"]
MINMAX = ["--n", "4", "--iterations", "10", "--inc-steps", "5"]


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    """``(models_dir, env)``: 24 fixture images + tiny classifier, robust copy and BEGAN generator."""
    from began.model import build_generator
    from tests.data.celeba_fixture import make_celeba
    from tf_inc.models import celeba_classifier

    base = tmp_path_factory.mktemp("celeba_scripts")
    make_celeba(base / "celeba", n=24)
    models = base / "models"
    models.mkdir()
    import keras

    keras.utils.set_random_seed(0)                               # the untrained classifier is the same every run
    clf = celeba_classifier()
    clf.save(models / "celeba_classifier.keras")
    clf.save(models / "celeba_classifier_robust.keras")        # figure7's test replaces it by a trained one
    build_generator(z_dim=16, hidden=8, convs_per_block=1).save(models / "celeba_generator.keras")
    return models, {"TF_INC_CELEBA": str(base / "celeba")}


def run_celeba(name, args, celeba, out):
    models, env = celeba
    rec, stdout = run_script(name, ["--dataset", "celeba", *args], models, out, extra_env=env, timeout=600)
    assert rec["dataset"] == "celeba" and rec["config"]["dataset"] == "celeba"
    assert "is missing: training it now" not in stdout          # the fixture models were used
    return rec["metrics"], rec


def test_table1(celeba, tmp_path):
    m, rec = run_celeba("table1_attacks", ["--n", "4", *INC, "--cw-iterations", "3", "--cw-binary-steps", "1",
                                           "--cw-l0-outer-steps", "2", "--cw-linf-outer-steps", "2"],
                        celeba, tmp_path)
    assert rec["paper"]["fgsm_0.05/inc_acc"] == 0.82
    for attack in ("clean", "fgsm_0.05", "fgsm_0.1", "fgsm_0.2", "cw_l2", "cw_l0", "cw_linf"):
        assert 0.0 <= m[f"{attack}/classifier_acc"] <= 1.0 and 0.0 <= m[f"{attack}/inc_acc"] <= 1.0


def test_figure4(celeba, tmp_path):
    m, rec = run_celeba("figure4_reconstructions", ["--n", "3", *INC], celeba, tmp_path)
    assert m["eps"] == 0.05                                      # the paper's CelebA budget
    assert len(m["confidence_g_z_adv"]) == 3
    assert rec["paper"] == {"max_confidence_x_adv": 0.08, "min_confidence_g_z_adv": 0.99}


def test_figure5(celeba, tmp_path):
    m, _ = run_celeba("figure5_substitute", ["--n", "24", "--n-substitute", "8", "--substitute-epochs", "1",
                                            "--jacobian-rounds", "1", "--eps", "0.05", *INC], celeba, tmp_path)
    assert {"fgsm_0.05/transfer_rate", "bim_0.05/transfer_rate", "bim_0.05/substitute_success"} <= set(m)


def test_figure12_trains_a_conv_encoder(celeba, tmp_path):
    m, _ = run_celeba("figure12_combined_attack", ["--n", "4", "--eps", "0", "0.1", "--encoder", "train",
                                                  "--encoder-images", "8", "--encoder-epochs", "1", *INC],
                      celeba, tmp_path)
    assert m["encoder"] == "trained" and m["eps"] == [0.0, 0.1]
    assert np.all(np.isfinite(m["autoencoder_recon_l2"]))


def test_bpda(celeba, tmp_path):
    m, rec = run_celeba("bpda_attack", ["--n", "3", "--linf", "0.1", "--l2", "4.0", "--nb-iter", "2",
                                        "--attack-steps", "3", "--eval-steps", "5", "--eval-restarts", "1"],
                        celeba, tmp_path)
    assert set(m) == {"clean", "linf_0.1", "l2_4.0"}


def test_figure7_trains_the_robust_classifier(celeba, tmp_path):
    models, _ = celeba
    before = (models / "celeba_classifier_robust.keras").stat().st_mtime_ns
    m, rec = run_celeba("figure7_robust_training", [*MINMAX, "--train-epochs", "1", "--train-steps-per-epoch", "4",
                                                    "--attack-steps", "3", "--every-k", "2", "--n-test", "8",
                                                    "--run-dir", str(tmp_path / "run")], celeba, tmp_path)
    assert (models / "celeba_classifier_robust.keras").stat().st_mtime_ns > before
    assert (tmp_path / "run" / "steps.jsonl").read_text().count("\n") == 4
    assert rec["paper"]["robust/clean_acc"] == 0.97
    for k in ("clean_acc", "robust/clean_acc", "valid_frac", "robust/valid_frac"):
        assert 0.0 <= m[k] <= 1.0


def test_figure6_with_inc_check(celeba, tmp_path):
    m, rec = run_celeba("figure6_minmax_pairs", MINMAX, celeba, tmp_path)
    assert 0.0 <= m["inc_disagree_frac"] <= 1.0 or np.isnan(m["inc_disagree_frac"])
    assert rec["paper"]["differ_frac"] == 0.57
    # the paper's l2 attack is the main one; the original code's sym_ce is reported beside it
    assert {"differ_frac", "confident_differ_frac", "sym_ce/differ_frac", "robust/sym_ce/mean_kl"} <= set(m)


@pytest.mark.parametrize("name,keys", [
    ("figure8_attack_convergence", {"valid_frac", "mean_kl", "differ_frac", "robust/valid_frac"}),
    ("figure9_borderline_softmax", {"old_pairs_on_robust/mean_kl", "old_pairs_on_robust/differ_frac"}),
])
def test_minmax_figures(celeba, tmp_path, name, keys):
    m, _ = run_celeba(name, [*MINMAX, "--inc-check", "false"], celeba, tmp_path)
    assert keys <= set(m)


def test_without_data_says_what_to_put_where(tmp_path):
    env = {"TF_INC_MODELS": str(tmp_path / "models"), "TF_INC_CELEBA": str(tmp_path / "none")}
    code, _, err = run_script_failing("table1_attacks", ["--dataset", "celeba", "--out", tmp_path], env)
    assert code == 2 and err.startswith("error: CelebA not found") and "Traceback" not in err
    assert "CelebA not found" in err and "list_attr_celeba.txt" in err and "img_align_celeba" in err
