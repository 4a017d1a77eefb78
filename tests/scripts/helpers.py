import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def child_env(tmp_path):
    """Environment of a child Python process: this repo importable, models under ``tmp_path/models``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["TF_INC_MODELS"] = str(tmp_path / "models")
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    return env


def run_script(name, args, models_dir, out_dir, extra_env=None, timeout=900):
    env = dict(os.environ, TF_INC_MODELS=str(models_dir), TF_CPP_MIN_LOG_LEVEL="3", **(extra_env or {}))
    proc = subprocess.run([sys.executable, f"scripts/{name}.py", "--out", str(out_dir), *map(str, args)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    last = [l for l in proc.stdout.strip().splitlines() if l.strip()][-1]
    assert last == f"results: {(Path(out_dir) / (name + '.json')).resolve()}", last
    assert (Path(out_dir) / f"{name}.png").stat().st_size > 1000
    rec = json.loads((Path(out_dir) / f"{name}.json").read_text())
    assert rec["name"] == name
    for key in ("paper_ref", "dataset", "config", "metrics", "paper", "runtime_s", "created_at", "git_commit"):
        assert key in rec
    return rec, proc.stdout
