"""End-to-end: every ``scripts/notes_*.py`` of this package with a tiny n on the session's models
(conventions of docs/CONVENTIONS.md: last line ``results: <json>``, PNG + JSON, the common record)."""
import math

import pytest

from tests.scripts.helpers import run_script


@pytest.fixture(scope="module")
def notes_models(trained_classifier, shipped_extra, isolated_models_dir):
    """The shipped MLP / wide CNN / RBF net under their artifact names, so the scripts find them."""
    return isolated_models_dir


CASES = {
    "notes_targeted_fgsm": (["--n", 4, "--n-random", 4, "--nb-iter", 20, "--eps-iter", 0.02, "--figure-images", 3],
                            ["success_rate", "mean_pixels_changed", "early_stop/success_rate",
                             "random_targets/success_rate"]),
    "notes_jsma": (["--n", 2, "--n-random", 2, "--gamma", 0.05, "--figure-images", 2],
                   ["success_rate", "mean_pixels_changed", "random_targets/success_rate"]),
    "notes_one_pixel": (["--n", 2, "--pixels", 1, 3, "--popsize", 20, "--maxiter", 2, "--compare-n", 1,
                         "--compare-maxiter", 1, "--figure-images", 2],
                        ["1px/success_rate", "3px/success_rate", "timing/tf_s_per_image", "timing/scipy_s_per_image"]),
    "notes_transferability": (["--n", 40, "--pgd-steps", 3],
                              ["fgsm/cnn->mlp", "pgd/cnn_wide->cnn", "pgd/ensemble->mlp", "pgd/mean_white_box"]),
    "notes_representation_plots": (["--n", 6, "--n-background", 150, "--nb-iter", 20, "--eps-iter", 0.02,
                                    "--perplexity", 5, "--figure-images", 3],
                                   ["adv_knn_target_frac", "pca_explained_variance_2d", "rel_change/fc1/successful"]),
    "notes_cross_sections": (["--n", 2, "--grid", 9, "--figure-images", 2],
                             ["adversarial/misclassified_frac", "random/misclassified_frac"]),
    "notes_adversarial_subspace": (["--n", 2, "--eps", 5, "--k-grid", 1, 2, 4],
                                   ["mean_directions", "eps_5/directions", "eps_5/success_frac_by_k"]),
    "notes_rbf_network": (["--n", 40, "--eps", 0.1, 0.25, "--pgd-steps", 3],
                          ["cnn/clean_acc", "rbf/clean_acc", "rbf/fgsm_0.25/acc", "rbf/pgd_0.25/acc",
                           "rbf/fgsm_0.25/mean_confidence_on_errors"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_notes_script_end_to_end(name, notes_models, tmp_path):
    args, keys = CASES[name]
    rec, stdout = run_script(name, ["--seed", 0, *args], notes_models, tmp_path / "out")
    assert "is missing" not in stdout                        # found the models by their artifact names
    assert rec["dataset"] == "mnist" and rec["paper_ref"].startswith("notes")
    m = rec["metrics"]
    for k in keys:
        assert k in m, (k, sorted(m))
        vals = m[k] if isinstance(m[k], list) else [m[k]]
        assert all(isinstance(v, (int, float)) for v in vals)
        if k.endswith(("rate", "_frac", "acc")):
            assert all(0.0 <= v <= 1.0 or math.isnan(v) for v in vals), (k, vals)
    for k in rec["paper"]:
        assert k in m, f"paper key {k} has no measured counterpart"


@pytest.mark.slow
def test_notes_script_refuses_other_datasets(notes_models, tmp_path):
    from tests.scripts.helpers import run_script_failing

    code, out, err = run_script_failing("notes_jsma", ["--dataset", "celeba", "--out", tmp_path])
    assert code != 0 and "mnist" in (out + err).lower()


@pytest.mark.parametrize("kw, match", [(dict(source_class=3, target_class=3), "must differ"),
                                       (dict(source_class=11), "digit 0-9"),
                                       (dict(target_class=-1), "digit 0-9")])
def test_targeted_notes_configs_refuse_bad_source_and_target(kw, match):
    """Checked when the config is built (so the CLI says it in one line), not inside the run."""
    from tf_inc.errors import InputError
    from tf_inc.experiments.notes_jsma import JsmaConfig
    from tf_inc.experiments.notes_targeted_fgsm import TargetedFgsmConfig

    for cls in (JsmaConfig, TargetedFgsmConfig):
        with pytest.raises(InputError, match=match):
            cls(**kw)
