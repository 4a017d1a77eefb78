"""Issue 15 (reliability): every long job resumes after a kill, losing no completed work and
duplicating no rows.

* the chunked row store itself (:mod:`tf_inc.experiments.resumable`): fixed chunks, merge order,
  fingerprint-keyed directories, atomic chunk files;
* INC over a dataset, the DIP fits of the Table 2 protocol and the min-max search: each is
  started in a subprocess, killed with SIGKILL once its first chunk / segment is on disk, run
  again to completion and compared with an uninterrupted run (``TestKillAndResume``).

The subprocesses build tiny Keras models from fixed numpy seeds (identical weights in every
process, so the fingerprints agree); nothing touches the network.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.scripts.helpers import child_env
from tf_inc.experiments.resumable import RowStore, fingerprint, load_npz, run_rows

REPO = Path(__file__).resolve().parent.parent.parent


# --------------------------------------------------------------------------- the row store
def _rows_fn(calls):
    def fn(start, stop):
        calls.append((start, stop))
        idx = np.arange(start, stop)
        return {"i": idx, "sq": (idx ** 2).astype(np.float32)[:, None] * np.ones((1, 3), np.float32)}

    return fn


def test_chunks_depend_only_on_n_and_chunk_and_merge_in_image_order(tmp_path):
    store = RowStore(tmp_path, "job", {"a": 1}, n=10, chunk=3)
    assert store.n_chunks == 4
    assert [store.span(i) for i in range(4)] == [(0, 3), (3, 6), (6, 9), (9, 10)]
    # a chunk finished by an earlier run (here: the third one) is loaded, not recomputed
    store.dir.mkdir(parents=True)
    store.save(2, _rows_fn([])(6, 9))
    calls = []
    rows = store.run(_rows_fn(calls), progress=False, log=None)
    assert calls == [(0, 3), (3, 6), (9, 10)]
    assert store.computed == [0, 1, 3]
    np.testing.assert_array_equal(rows["i"], np.arange(10))
    np.testing.assert_array_equal(rows["sq"][:, 1], np.arange(10) ** 2)
    # a second run computes nothing, returns the same rows and says what it resumed
    calls2, said = [], []
    again = RowStore(tmp_path, "job", {"a": 1}, n=10, chunk=3)
    rows2 = again.run(_rows_fn(calls2), progress=False, log=said.append)
    assert calls2 == [] and again.computed == []
    assert said == [f"[job] resuming {again.dir}: 4/4 chunks done"]
    for k in rows:
        np.testing.assert_array_equal(rows2[k], rows[k])
    assert sorted(p.name for p in again.dir.iterdir()) == [f"chunk-0000{i}.npz" for i in range(4)] + ["meta.json"]
    assert json.loads((again.dir / "meta.json").read_text())["n_chunks"] == 4


def test_a_changed_setting_model_or_input_starts_a_fresh_directory(tmp_path):
    import keras

    x = np.zeros((5, 2), np.float32)
    base = RowStore(tmp_path, "job", ("cfg", {"steps": 10}, x), n=5, chunk=2)
    base.run(_rows_fn([]), progress=False, log=None)
    for key, n, chunk in [(("cfg", {"steps": 11}, x), 5, 2),            # a setting
                          (("cfg", {"steps": 10}, x + 1e-7), 5, 2),     # the input bytes
                          (("cfg", {"steps": 10}, x), 5, 3)]:           # the chunk size
        other = RowStore(tmp_path, "job", key, n=n, chunk=chunk)
        assert other.dir != base.dir
        calls = []
        other.run(_rows_fn(calls), progress=False, log=None)
        assert len(calls) == other.n_chunks                              # nothing stale reused
    assert RowStore(tmp_path, "job", ("cfg", {"steps": 10}, x), n=5, chunk=2).dir == base.dir
    # dict order does not matter; types and model weights do
    assert fingerprint({"a": 1, "b": 2.0}) == fingerprint({"b": 2.0, "a": 1})
    assert fingerprint(1) != fingerprint("1") != fingerprint(1.0)
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    before = fingerprint(m)
    assert fingerprint(m) == before
    m.layers[0].kernel.assign(m.layers[0].kernel + 1.0)
    assert fingerprint(m) != before


def test_chunk_files_are_atomic_and_leftovers_are_ignored(tmp_path, monkeypatch):
    store = RowStore(tmp_path, "job", "k", n=6, chunk=2)
    store.dir.mkdir(parents=True)
    # a temp file left by a write that was killed before its rename, and a chunk file that is not
    # a valid npz (e.g. lost data after a power cut) or holds the wrong span: all are redone
    (store.dir / ".chunk-00000.npz.abc123.tmp").write_bytes(b"half a file")
    store.path(1).write_bytes(b"\x00" * 10)
    from tf_inc.experiments.resumable import save_npz

    save_npz(store.path(2), _start=np.int64(0), _stop=np.int64(2), i=np.arange(2))
    calls = []
    rows = store.run(_rows_fn(calls), progress=False, log=None)
    assert calls == [(0, 2), (2, 4), (4, 6)]
    np.testing.assert_array_equal(rows["i"], np.arange(6))
    assert store.load(1) is not None and store.load(2) is not None

    # a kill between writing and renaming leaves no chunk file (and the writer cleans its temp)
    fresh = RowStore(tmp_path, "other", "k", n=4, chunk=2)

    def killed(src, dst):
        raise KeyboardInterrupt("killed before the rename")

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        fresh.run(_rows_fn([]), progress=False, log=None)
    monkeypatch.undo()
    assert not fresh.path(0).exists() and not list(fresh.dir.glob("*.tmp"))
    calls = []
    run_rows(_rows_fn(calls), 4, 2, tmp_path, "other", "k", progress=False)
    assert calls == [(0, 2), (2, 4)]


def test_row_shapes_are_checked_before_saving(tmp_path):
    store = RowStore(tmp_path, "job", "k", n=4, chunk=2)
    with pytest.raises(ValueError, match="expected 2 rows"):
        store.run(lambda a, b: {"i": np.arange(3)}, progress=False, log=None)
    with pytest.raises(ValueError, match="reserved"):
        store.run(lambda a, b: {"_start": np.arange(b - a)}, progress=False, log=None)
    assert not store.path(0).exists()


def test_chunked_inc_equals_unchunked(trained_vae, trained_classifier, correct_digits, tmp_path):
    """Content seeding: an image's projection does not depend on its chunk, so the resumable
    path (chunks of 5 images, not a multiple of the batch) gives the plain call's answer."""
    from tf_inc.defences.inc import InvertAndClassify
    from tf_inc.manifold.inversion import InversionConfig

    x, _ = correct_digits
    x = x[:12]
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier,
                            InversionConfig(steps=150, restarts=2, early_stop=False), seed=3)
    plain = inc.predict(x)
    chunked = inc.predict(x, run_dir=tmp_path, chunk=5)
    (d,) = list(tmp_path.iterdir())
    assert d.name.startswith("invert-") and len(list(d.glob("chunk-*.npz"))) == 3
    a, b = plain["result"], chunked["result"]
    np.testing.assert_array_equal(chunked["label"], plain["label"])
    np.testing.assert_array_equal(b.restart, a.restart)
    np.testing.assert_array_equal(b.steps, a.steps)
    assert b.total_steps == a.total_steps
    np.testing.assert_allclose(b.z, a.z, atol=1e-4)
    np.testing.assert_allclose(b.l2, a.l2, rtol=1e-5)
    np.testing.assert_allclose(b.restart_l2, a.restart_l2, rtol=1e-5)
    # rerun: every chunk reused, the same rows
    again = inc.invert(x, run_dir=tmp_path, chunk=5)
    np.testing.assert_array_equal(again.z, b.z)
    # position seeding: chunks that are whole batches give exactly the plain call's batches
    from tf_inc.errors import InputError

    pos = InvertAndClassify(trained_vae.decoder, trained_classifier,
                            InversionConfig(steps=40, restarts=2, seeding="position", batch_size=4), seed=3)
    np.testing.assert_array_equal(pos.invert(x, run_dir=tmp_path, chunk=8).z, pos.invert(x).z)
    with pytest.raises(InputError, match="multiple of batch_size"):
        pos.invert(x, run_dir=tmp_path, chunk=6)


def test_run_dir_flags_parse():
    from tf_inc.cli import parse_config
    from tf_inc.experiments.figure3_mnist_fgsm import Figure3Config
    from tf_inc.experiments.figure4_reconstructions import Figure4Config
    from tf_inc.experiments.figure6_minmax_pairs import Figure6Config
    from tf_inc.experiments.table2_dip import Table2DIPConfig
    from tf_inc.experiments.table2_dip_imagenet import Table2ImageNetConfig

    for cls in (Figure3Config, Figure4Config, Table2DIPConfig, Table2ImageNetConfig):
        assert cls().run_dir == ""                                       # default: no resume
        assert parse_config(cls, ["--run-dir", "runs/x"]).run_dir == "runs/x"
    cfg = parse_config(Figure6Config, ["--minmax-run-dir", "runs/mm", "--minmax-segment-steps", "250"])
    assert (cfg.minmax_run_dir, cfg.minmax_segment_steps) == ("runs/mm", 250)
    with pytest.raises(SystemExit):
        parse_config(Figure6Config, ["--minmax-segment-steps", "0"])


# --------------------------------------------------------------------------- kill and resume
CHILD = r'''
"""One long job, resumable from RUN_DIR; with mode=resume also the uninterrupted run (no run_dir)."""
import dataclasses
import json
import sys

import numpy as np

kind, mode, run_dir, out = sys.argv[1:5]

import keras  # noqa: E402


def tiny_models(k=4, hw=8, scale=0.3):
    """A generator z -> (hw, hw, 1) in [0, 1] and a classifier, weights from a fixed numpy seed."""
    rng = np.random.default_rng(0)
    g = keras.Sequential([keras.Input((k,)), keras.layers.Dense(32, activation="tanh"),
                          keras.layers.Dense(hw * hw, activation="sigmoid"), keras.layers.Reshape((hw, hw, 1))])
    c = keras.Sequential([keras.Input((hw, hw, 1)), keras.layers.Flatten(),
                          keras.layers.Dense(16, activation="relu"), keras.layers.Dense(10)])
    for m in (g, c):
        m.set_weights([rng.normal(0, scale, w.shape).astype("float32") for w in m.get_weights()])
    return g, c


g, c = tiny_models()
arrays = {}

if kind == "inc":
    from tf_inc.defences.inc import InvertAndClassify
    from tf_inc.manifold.inversion import InversionConfig

    x = np.random.default_rng(1).uniform(0, 1, (80, 8, 8, 1)).astype("float32")
    inc = InvertAndClassify(g, c, InversionConfig(steps=600, restarts=2, batch_size=8, early_stop=False),
                            bounds=(0.0, 1.0))

    def rows(p):
        r = p["result"]
        return {"label": p["label"], "z": r.z, "x_hat": r.x_hat, "l2": r.l2, "steps": r.steps,
                "restart": r.restart, "restart_l2": r.restart_l2, "total_steps": np.int64(r.total_steps)}

    arrays.update(rows(inc.predict(x, run_dir=run_dir)))                   # chunk: the batch size
    if mode == "resume":
        arrays.update({"ref_" + k: v for k, v in rows(inc.predict(x)).items()})

elif kind == "dip":
    from tf_inc.experiments.table2_dip import Table2DIPConfig, run_protocol

    rng = np.random.default_rng(2)
    x = rng.uniform(0, 1, (16, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 10, 16)
    cfg = Table2DIPConfig(n=16, eps=[0.1, 0.4], max_iterations=[120, 60], mse_threshold=0.0, batch_size=4,
                          bim_steps=3, net_scales=2, net_down=4, net_up=4, net_skip=2, net_code_channels=2,
                          canvas_multiple=4, curve_n=0, bpda_n=0, run_dir=run_dir)

    def rows(res, prefix=""):
        m = {k: v for k, v in res["metrics"].items() if "seconds" not in k}
        d = {prefix + "metrics": np.array(json.dumps(m, sort_keys=True))}
        d[prefix + "clean"] = res["fits"]["clean"]
        for b, v in res["fits"]["clean_by_budget"].items():
            d[f"{prefix}clean_{b}"] = v
        for e in cfg.eps:
            d[f"{prefix}adv_{e:g}"] = res["fits"][float(e)]
        return d

    arrays.update(rows(run_protocol(c, x, y, cfg, (0.0, 1.0))))
    if mode == "resume":
        arrays.update(rows(run_protocol(c, x, y, dataclasses.replace(cfg, run_dir=""), (0.0, 1.0)), "ref_"))

elif kind == "minmax":
    from tf_inc.experiments.minmax_report import MinMaxScriptConfig, attack

    cfg = MinMaxScriptConfig(n=16, iterations=6000, budget_msd=1e-3, valid_msd=3e-3, also_divergences=[],
                             inc_check=False, minmax_run_dir=run_dir, minmax_segment_steps=500)

    def rows(r):
        h = r.history
        return {"z": r.z, "z2": r.z2, "p": r.p, "p2": r.p2, "msd": r.msd, "valid": r.valid,
                "divergence": r.divergence, "step": h["step"], "mean_output_l2": h["mean_output_l2"],
                "valid_frac": h["valid_frac"], "mean_lambda": h["mean_lambda"], "steps_run": np.int64(h["steps_run"])}

    arrays.update(rows(attack(g, c, cfg)))
    if mode == "resume":
        arrays.update({"ref_" + k: v for k, v in rows(attack(g, c, dataclasses.replace(cfg, minmax_run_dir=""))).items()})

np.savez(out, **arrays)
print("DONE", flush=True)
'''


def _files(run_dir, pattern):
    """{path: (inode, mtime_ns)} of the finished files (temp files start with a dot: not matched)."""
    return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in run_dir.rglob(pattern)}


def _kill_after_first(tmp_path, kind, pattern, peek=None):
    """Start the job, SIGKILL it as soon as a file matching ``pattern`` exists; rerun it to the end.

    Returns (files before the kill, files after the rerun, the rerun's stdout, its outputs,
    ``peek(files before the kill)`` taken before the rerun)."""
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    run_dir = tmp_path / "run"
    cmd = [sys.executable, str(child), kind, "{mode}", str(run_dir), str(tmp_path / "out.npz")]
    first = [a.format(mode="run") for a in cmd]
    proc = subprocess.Popen(first, cwd=REPO, env=child_env(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not _files(run_dir, pattern):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, f"the job ended before it was killed:\n{out[-3000:]}"
    before = _files(run_dir, pattern)
    assert before, out[-3000:]
    peeked = peek(before) if peek is not None else None
    again = subprocess.run([a.format(mode="resume") for a in cmd], cwd=REPO, env=child_env(tmp_path),
                           capture_output=True, text=True, timeout=400)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "DONE" in again.stdout
    return before, _files(run_dir, pattern), again.stdout, dict(np.load(tmp_path / "out.npz")), peeked


def _resumed_chunks(stdout):
    """Sum of k over the rerun's ``resuming <dir>: k/K chunks done`` lines."""
    import re

    return sum(int(m.group(1)) for m in re.finditer(r"resuming \S+: (\d+)/\d+ chunks done", stdout))


def _assert_no_duplicates(run_dir, n_per_store):
    """Every store's chunk files cover its images exactly once, in order."""
    for d in sorted(p for p in run_dir.iterdir() if p.is_dir()):
        spans = []
        for f in sorted(d.glob("chunk-*.npz")):
            arrays = load_npz(f)
            spans.append((int(arrays["_start"]), int(arrays["_stop"])))
        assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:])), (d, spans)
        assert spans[-1][1] == n_per_store[d.name.split("-")[0]], (d, spans)


@pytest.mark.slow
class TestKillAndResume:
    def test_inc_over_a_dataset(self, tmp_path):
        before, after, stdout, out, _ = _kill_after_first(tmp_path, "inc", "chunk-*.npz")
        n_chunks = 10                                                 # 80 images, chunks of 8
        assert 1 <= len(before) < n_chunks
        assert len(after) == n_chunks
        for p, stamp in before.items():                               # finished chunks were not redone
            assert after[p] == stamp
        assert _resumed_chunks(stdout) == len(before)
        _assert_no_duplicates(tmp_path / "run", {"invert": 80})
        for k in ("label", "z", "x_hat", "l2", "steps", "restart", "restart_l2", "total_steps"):
            np.testing.assert_array_equal(out[k], out["ref_" + k], err_msg=k)   # = the uninterrupted run
        assert out["z"].shape == (80, 4)

    def test_dip_table2_protocol(self, tmp_path):
        before, after, stdout, out, _ = _kill_after_first(tmp_path, "dip", "chunk-*.npz")
        # three fits (clean, eps 0.1, eps 0.4) of 16 images in chunks of 4
        assert 1 <= len(before) < 12
        assert len(after) == 12 and len(list((tmp_path / "run").iterdir())) == 3
        for p, stamp in before.items():
            assert after[p] == stamp
        assert _resumed_chunks(stdout) == len(before)
        _assert_no_duplicates(tmp_path / "run", {"dip": 16})
        assert json.loads(str(out["metrics"])) == json.loads(str(out["ref_metrics"]))
        for k in out:
            if not k.startswith("ref_") and k != "metrics":
                np.testing.assert_array_equal(out[k], out["ref_" + k], err_msg=k)

    def test_minmax_search(self, tmp_path):
        before, after, stdout, out, step = _kill_after_first(
            tmp_path, "minmax", "minmax-*.npz", peek=lambda files: int(load_npz(next(iter(files)))["i"]))
        (ck,) = before                                                # one file, rewritten every segment
        # ``step``: the step counter of the checkpoint the kill left behind
        assert step % 500 == 0 and 500 <= step < 6000
        assert f"[minmax] resuming {ck} at step {step}/6000" in stdout
        final = load_npz(ck)
        assert int(final["i"]) == 6000 and len(final["hist_out"]) == 6000 // 50      # no log row twice
        assert int(out["steps_run"]) == 6000
        for k in ("z", "z2", "p", "p2", "msd", "valid", "divergence", "step", "mean_output_l2", "valid_frac",
                  "mean_lambda", "steps_run"):
            np.testing.assert_allclose(out[k], out["ref_" + k], rtol=1e-5, atol=1e-6, err_msg=k)
