"""Atomic file outputs and the result-JSON format of docs/CONVENTIONS.md."""
from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import math
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Dict, Optional

from tf_inc.paths import REPO_ROOT


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="." + path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())      # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _jsonable(v: Any):
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {k: _jsonable(x) for k, x in dataclasses.asdict(v).items()}
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, Path):
        return str(v)
    if hasattr(v, "tolist"):
        return _jsonable(v.tolist())
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return v


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(_jsonable(obj), indent=2) + "\n").encode())


def save_figure(fig, path: Path, dpi: int = 120) -> None:
    """Save a matplotlib figure atomically as PNG."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def save_keras_model(model, path: Path, include_optimizer: bool = True) -> None:
    """``model.save`` to a temp ``.keras`` beside ``path`` then rename (atomic).

    ``include_optimizer=False`` drops the optimizer state (a third of the size of an Adam-trained
    model) by reloading the temp file uncompiled and saving that: what ships is the inference
    model, bit-identical weights. Training resumes from the run directory's checkpoints instead.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    tmp2 = path.with_name(f".{path.stem}.{os.getpid()}.tmp2.keras")
    try:
        model.save(tmp)
        if not include_optimizer:
            import keras

            keras.saving.load_model(tmp, compile=False).save(tmp2)
            os.replace(tmp2, tmp)
        os.replace(tmp, path)
    finally:
        for t in (tmp, tmp2):
            if t.exists():
                t.unlink()


def git_commit() -> Optional[str]:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None if out.returncode == 0 else None
    except Exception:
        return None


def result_record(
    name: str,
    paper_ref: str,
    dataset: str,
    config: Any,
    metrics: Dict[str, Any],
    paper: Dict[str, Any],
    runtime_s: float,
) -> Dict[str, Any]:
    """One result object in the shared format."""
    return {
        "name": name,
        "paper_ref": paper_ref,
        "dataset": dataset,
        "config": _jsonable(config),
        "metrics": _jsonable(metrics),
        "paper": _jsonable(paper),
        "runtime_s": round(float(runtime_s), 3),
        "created_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
    }
