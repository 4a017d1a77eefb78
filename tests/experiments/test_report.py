"""REPRODUCTION.md is generated from the result files, and the committed one is up to date."""
import json

from tf_inc.experiments import report
from tf_inc.paths import REPO_ROOT


def _write(d, name, metrics, paper=None, **extra):
    rec = {"name": name, "paper_ref": "X", "dataset": "mnist", "config": {"n": 7, "seed": 3},
           "metrics": metrics, "paper": paper or {}, "runtime_s": 90.0, "created_at": "t", "git_commit": "abc",
           **extra}
    (d / f"{name}.json").write_text(json.dumps(rec))


def test_report_puts_ours_beside_the_paper_and_says_what_is_missing(tmp_path):
    _write(tmp_path, "figure3_mnist_fgsm", {"eps": [0.0, 0.3], "classifier_acc": [0.99, 0.1], "inc_acc": [0.98, 0.6]})
    _write(tmp_path, "bpda_attack", {"l2_4.0": 0.38, "clean": 0.99}, paper={"l2_4.0": 0.55})
    _write(tmp_path, "robustness_table", {"inc/worst/l2_4.0": 0.2, "inc/worst/l2_4.0/ci95": [0.15, 0.26],
                                          "none/worst/linf_0.1": 0.66, "checks/inc/monotone_l2": True,
                                          "checks/inc/unbounded_to_chance": False},
           config={"n": 200, "defences": ["none", "adv_training", "inc", "inc_robust"],
                   "budgets": ["linf_0.1", "linf_0.2", "linf_0.3", "l2_2.0", "l2_3.0", "l2_4.0"]})
    _write(tmp_path, "notes_jsma", {"success_rate": 0.97})
    text = report.render(tmp_path)
    assert "| 0.3 | 0.1 | 0.6 |" in text                                  # list metrics as a table
    assert "| `l2_4.0` | 0.38 | 0.55 |" in text                          # ours beside the paper
    assert "n = 7" in text and "1.5 min" in text                          # settings and runtime from the JSON
    assert "**failed**: `checks/inc/unbounded_to_chance`" in text         # failed checks are shown
    assert "| `inc` | — | — | — | — | — | 20.0 % (15–26) |" in text         # defence × budget grid with intervals
    assert "| `none` | 66.0 % | — |" in text and "| `inc_robust` |" not in text
    assert "not run yet — `python scripts/table1_attacks.py`" in text     # missing results say how to fill them
    assert "data/celeba/" in text and "resnet152" in text.lower()         # data we lack: where to put it
    assert "notes_jsma" in text and "0.97" in text                        # notes results are picked up


def test_committed_report_is_up_to_date():
    committed = (REPO_ROOT / "REPRODUCTION.md").read_text()
    assert committed == report.render(REPO_ROOT / "results"), "REPRODUCTION.md is stale: run `make report`"
