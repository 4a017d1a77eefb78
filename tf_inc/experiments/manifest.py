"""SHA-256 manifest of the shipped model files, checked at load.

The trained MNIST models ship with the repository (``models/``) so that a fresh clone shows the
paper's figures in minutes instead of retraining for half an hour. ``models/MANIFEST.json``
records, for each shipped file, its SHA-256, size, the command and seed that produced it and the
numbers it reached (validation split for selection, test split reported only). :func:`verify`
runs before every load from the models directory: a file whose bytes differ from its manifest
entry (truncated download, partial copy, hand-edited) is refused with one message saying how to
restore it, instead of loading something nobody measured.

Files that are not in the manifest (a model you trained yourself into another ``TF_INC_MODELS``
directory, test fixtures) load without a check. ``make models-retrain`` retrains the shipped
models from scratch and rewrites their entries (:func:`record`).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict

from tf_inc.errors import UntrustedFileError
from tf_inc.io import atomic_write_json, git_commit

MANIFEST_NAME = "MANIFEST.json"


class ModelFileError(UntrustedFileError):
    """A model file that must not be trusted: hash mismatch, truncated, corrupt, wrong architecture."""


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(models_dir: Path) -> Path:
    return Path(models_dir) / MANIFEST_NAME


def read_manifest(models_dir: Path) -> Dict[str, Dict[str, Any]]:
    """The manifest's entries by file name (``{}`` when the directory has no manifest)."""
    path = manifest_path(models_dir)
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelFileError(f"{path} is not valid JSON ({e}); restore it with `git checkout -- {path}`") from e
    return data.get("models", {})


def verify(path: Path) -> bool:
    """Check ``path`` against its manifest entry; ``True`` if checked, ``False`` if not listed.

    Raises :class:`ModelFileError` when the file is listed and its size or SHA-256 differs.
    """
    path = Path(path)
    entry = read_manifest(path.parent).get(path.name)
    if entry is None:
        return False
    size = path.stat().st_size
    digest = sha256_file(path) if size == entry.get("bytes") else None
    if digest != entry["sha256"]:
        got = f"SHA-256 {digest}" if digest else f"{size} bytes"
        raise ModelFileError(
            f"{path} does not match {manifest_path(path.parent)} (expected SHA-256 {entry['sha256']}, "
            f"{entry.get('bytes')} bytes; got {got}). The file is truncated, corrupt or was replaced. "
            f"Restore the shipped file with `git checkout -- {path}` (or `git lfs pull` if you cloned "
            "without it), or retrain it with `make models-retrain`, which rewrites the manifest.")
    return True


def record(path: Path, **info: Any) -> Dict[str, Any]:
    """Write (or replace) the manifest entry of ``path``: hash, size, ``info`` (command, seed, metrics)."""
    path = Path(path)
    mpath = manifest_path(path.parent)
    data = json.loads(mpath.read_text()) if mpath.exists() else {}
    data.setdefault("about", "SHA-256 of the shipped model files; checked by tf_inc.experiments.zoo.load. "
                             "`make models-retrain` regenerates the files and this manifest.")
    entry = {"sha256": sha256_file(path), "bytes": path.stat().st_size, "git_commit": git_commit(), **info}
    data.setdefault("models", {})[path.name] = entry
    atomic_write_json(mpath, data)
    return entry


def save_and_record(model, path: Path, *, command: str, config: Any = None, metrics: Dict[str, float] = None,
                    **info: Any) -> Dict[str, Any]:
    """Save the inference model (no optimizer state) atomically and record it in the manifest.

    ``command`` regenerates the file, ``config`` is its training config (dataclass or dict, with the
    seed), ``metrics`` what it reached — say which split each number comes from in its key.
    """
    import dataclasses

    from tf_inc.io import save_keras_model

    path = Path(path)
    save_keras_model(model, path, include_optimizer=False)
    if dataclasses.is_dataclass(config):
        config = dataclasses.asdict(config)
    return record(path, command=command, config=config or {}, metrics=dict(metrics or {}), **info)
