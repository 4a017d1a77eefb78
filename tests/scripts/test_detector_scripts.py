"""The Appendix-A and notes detector scripts end to end on the session's small MNIST models (tiny n)."""
import numpy as np
import pytest

from tests.scripts.helpers import run_script

pytestmark = pytest.mark.slow
VAE2D = ["--vae2d-epochs", "1", "--vae2d-n-train", "2000"]
CW_FAST = ["--cw-binary-steps", "2", "--cw-iterations", "40"]
NA_FAST = ["--na-samples", "50", "--na-step", "0.1", "--na-max-iterations", "20"]


@pytest.fixture(scope="module")
def models(trained_classifier, trained_vae, isolated_models_dir):
    return isolated_models_dir


def test_figure13_15(models, tmp_path):
    rec, out = run_script("figure13_15_autoencode_detect",
                          ["--n", "24", "--n-calib", "40", "--steps", "150", "--restarts", "1", *VAE2D,
                           "--vae2d-run-dir", str(tmp_path / "vae2d"), "--adaptive-n", "8", "--adaptive-iter", "15",
                           "--adaptive-inc-iter", "4", "--attack-steps", "20"], models, tmp_path)
    m = rec["metrics"]
    assert (models / "mnist_vae_2d.keras").exists()            # trained once, cached in the models dir
    assert m["encoder/auc"] > 0.8                              # the encoder path detects the eq. 12 attack
    assert m["autoencoder_adv_acc"] < m["autoencoder_clean_acc"] - 0.3
    assert m["inc_adv_acc"] > m["autoencoder_adv_acc"]          # G(z*_adv) keeps the class G(E(x_adv)) loses
    assert m["mean_l2_x_adv_to_G_zstar_adv"] < m["mean_l2_x_adv_to_G_E_x_adv"]
    for k in ("encoder", "inc"):
        assert 0.0 <= m[f"adaptive/{k}/aware/detection_rate"] <= 1.0
    for suffix in ("_latent2d", "_reconstructions"):
        assert (tmp_path / f"figure13_15_autoencode_detect{suffix}.png").stat().st_size > 1000


def test_vae_kl_detector(models, tmp_path):
    rec, _ = run_script("notes_vae_kl_detector",
                        ["--n", "24", "--n-calib", "100", "--latents", "20", "2", *VAE2D,
                         "--vae2d-run-dir", str(tmp_path / "vae2d"), "--ifgsm-iter", "20", "--ifgsm-step", "0.01",
                         "--pgd-iter", "5", *CW_FAST, "--adaptive-n", "8", "--adaptive-iter", "15"], models, tmp_path)
    m = rec["metrics"]
    assert m["vae20/fgsm_0.3/auc"] > 0.8 and m["vae20/pgd_0.3/auc"] > 0.8
    assert len(m["vae20/fgsm_0.3/sweep_detection_rate"]) == len(m["thresholds"]) == 6
    assert "vae2/cw_l2/auc" in m
    assert rec["paper"]["vae2/ifgsm_to6/detection_rate_at_notes_threshold"] == 0.99


def test_natural_adversaries(models, tmp_path):
    rec, _ = run_script("notes_natural_adversaries",
                        ["--n", "12", *CW_FAST, *NA_FAST, "--steps", "150", "--restarts", "1"], models, tmp_path)
    m = rec["metrics"]
    assert m["natural/found_frac"] == 1.0 and m["natural/label_changed_frac"] == 1.0
    assert m["natural/acc"] <= 0.1
    assert m["natural/relative_latent_distance"] < 1.0
    assert m["fgsm_0.3/inc_acc"] > m["fgsm_0.3/acc"]
    assert set(rec["paper"]) >= {"clean/acc", "fgsm_0.3/reconstructed_acc", "natural/reconstructed_acc"}


def test_mc_dropout(models, tmp_path):
    rec, _ = run_script("notes_mc_dropout_ood",
                        ["--n", "12", "--n-baseline", "50", "--samples", "20", "--fgsm-eps", "0.3", *CW_FAST,
                         *NA_FAST, "--adaptive-n", "8", "--adaptive-iter", "10"], models, tmp_path)
    m = rec["metrics"]
    assert m["fgsm_0.3/mi_auc"] > 0.7 and m["natural/mi_auc"] > 0.7
    assert np.isfinite(m["clean/relative_smv"]) and m["fgsm_0.3/mean_mi"] > m["clean/mean_mi"]
    assert 0.0 <= m["adaptive/aware/detection_rate"] <= 1.0
