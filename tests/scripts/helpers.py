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


def run_script(name, args, models_dir, out_dir, extra_env=None, timeout=900, subprocess_run=None,
               expect_table=True):
    """Run ``scripts/<name>.py --out out_dir *args`` as a user would and check its result record.

    By default the script runs as ``__main__`` inside this test process (its own argv, environment
    and working directory, stdout captured): the suite pays TensorFlow's start-up once per worker
    instead of once per script. ``subprocess_run=True`` (implied by ``--strategy``, which must
    configure devices before TensorFlow starts) runs it in a fresh interpreter instead; ``timeout``
    applies to that subprocess only (an in-process run is bounded by the suite's own limits).
    ``expect_table=False``: a run that writes no result table (e.g. one shard of a sharded job);
    returns ``(None, stdout)`` without checking the record.
    """
    argv = [f"scripts/{name}.py", "--out", str(out_dir), *map(str, args)]
    env = {"TF_INC_MODELS": str(models_dir), "TF_CPP_MIN_LOG_LEVEL": "3", **(extra_env or {})}
    if subprocess_run is None:
        subprocess_run = "--strategy" in argv
    if subprocess_run:
        proc = subprocess.run([sys.executable, *argv], cwd=REPO, env=dict(os.environ, **env),
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        stdout = proc.stdout
    else:
        stdout = _run_in_process(argv, env)
    if not expect_table:
        return None, stdout
    last = [l for l in stdout.strip().splitlines() if l.strip()][-1]
    assert last == f"results: {(Path(out_dir) / (name + '.json')).resolve()}", last
    assert (Path(out_dir) / f"{name}.png").stat().st_size > 1000
    rec = json.loads((Path(out_dir) / f"{name}.json").read_text())
    assert rec["name"] == name
    for key in ("paper_ref", "dataset", "config", "metrics", "paper", "runtime_s", "created_at", "git_commit"):
        assert key in rec
    return rec, stdout


def run_script_failing(name, args, env=None):
    """Run ``scripts/<name>.py *args`` in this process as :func:`run_script` does, for a run that
    must fail: returns ``(exit code, stdout, stderr)``, an uncaught exception counting as exit 1
    with its traceback on stderr (what ``python scripts/<name>.py`` would show). The suite pays no
    extra interpreter start-up for checking a script's error message."""
    code, out, err = _run_in_process([f"scripts/{name}.py", *map(str, args)],
                                     {"TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}, expect_success=False)
    return code, out, err


def _run_in_process(argv, env, expect_success=True):
    import contextlib
    import io
    import runpy
    import traceback

    saved_env = {k: os.environ.get(k) for k in env}
    saved_argv, saved_cwd = sys.argv, os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.update(env)
        sys.argv = list(argv)
        os.chdir(REPO)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err if not expect_success else sys.stderr):
            try:
                runpy.run_path(str(REPO / argv[0]), run_name="__main__")
            except SystemExit as e:
                code = 0 if e.code is None else e.code if isinstance(e.code, int) else 1
                if expect_success:
                    assert code == 0, f"{argv[0]} exited with {e.code}: " + out.getvalue()[-3000:]
            except Exception:
                if expect_success:
                    raise
                code = 1
                err.write(traceback.format_exc())
    finally:
        sys.argv = saved_argv
        os.chdir(saved_cwd)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        import matplotlib.pyplot as plt

        plt.close("all")
    if not expect_success:
        return code, out.getvalue(), err.getvalue()
    return out.getvalue()
