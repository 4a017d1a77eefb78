"""End-to-end: the Table 2 (DIP) and Figure 10 scripts on the session's small classifier, tiny n."""
from pathlib import Path

import pytest

from tests.scripts.helpers import run_script


@pytest.mark.slow
def test_table2_dip_script_end_to_end(trained_classifier, isolated_models_dir, tmp_path):
    out = tmp_path / "results"
    rec, stdout = run_script("table2_dip", [
        "--n", "6", "--eps", "0.05", "0.4", "--max-iterations", "40", "20", "--batch-size", "8", "--bim-steps", "5",
        "--curve-n", "3", "--curve-iterations", "5", "20", "--curve-eps", "0.4",
        "--bpda-n", "2", "--bpda-eps", "0.4", "--recon-eps", "0.05", "--recon-images", "3",
        "--net-scales", "2", "--net-down", "8", "--net-up", "8", "--net-skip", "2", "--net-code-channels", "4",
    ], isolated_models_dir, out)
    assert "training" not in stdout.lower()                  # found the session's classifier by name
    assert rec["paper_ref"] == "Table 2" and rec["dataset"] == "mnist"
    m, cfg = rec["metrics"], rec["config"]
    assert m["n"] == 6 and cfg["eps_pixels"] == [0.025, 0.2]
    for e, budget in (("0.05", 40), ("0.4", 20)):
        for key in ("classifier_clean_acc", "classifier_adv_acc", "dip_clean_acc", "dip_adv_acc"):
            assert 0.0 <= m[f"{e}/{key}"] <= 1.0
        assert 0 < m[f"{e}/mean_iterations"] <= budget and m[f"{e}/max_iterations"] == budget
        assert m[f"{e}/seconds_per_image"] > 0
    assert m["0.4/classifier_adv_acc"] <= m["0.05/classifier_adv_acc"]
    assert m["curve/iterations"] == [5, 20] and len(m["curve/0.4/dip_acc"]) == 2
    assert m["curve/0.4/mse_to_input"][1] < m["curve/0.4/mse_to_input"][0]      # the fit approaches x_adv
    assert 0.0 <= m["0.4/dip_bpda_acc"] <= 1.0 and "0.05/dip_bpda_acc" not in m
    assert rec["paper"]["0.1/dip_adv_acc"] == 0.30 and rec["paper"]["0.01/classifier_adv_acc"] == 0.05
    for suffix in ("_iterations", "_reconstructions"):
        assert (Path(out) / f"table2_dip{suffix}.png").stat().st_size > 1000


@pytest.mark.slow
def test_figure10_script_end_to_end(trained_classifier, isolated_models_dir, tmp_path):
    rec, _ = run_script("figure10_dip_reconstructions", ["--n", "3", "--max-iterations", "30"],
                        isolated_models_dir, tmp_path / "results")
    m = rec["metrics"]
    assert rec["paper_ref"] == "Figure 10" and m["n"] == 3
    assert 0 < m["clean/mean_iterations"] <= 30 and 0 < m["adv/mean_iterations"] <= 30
    assert m["adv/mse_input_to_clean"] > 0
