"""Resume long per-image jobs after a kill: a chunked row store keyed by a fingerprint.

Many long jobs compute one *row* per input image, independently of the other images: INC's
projection over a test split (:class:`tf_inc.manifold.inversion.Projector`), the DIP fits of a
folder (:class:`tf_inc.defences.dip.DIPFitter`). :class:`RowStore` makes such a job resumable:

* **fixed chunks.** The ``n`` images are cut into chunks ``[i·chunk, min((i+1)·chunk, n))``. The
  boundaries depend only on ``n`` and ``chunk``, never on what is already done, so a rerun cuts
  the same chunks and every image belongs to exactly one chunk file (no duplicated rows).
* **one file per finished chunk.** After a chunk is computed, its per-image outputs are written
  as ``chunk-<i>.npz`` with :func:`tf_inc.io.atomic_write_bytes` (temp file in the same
  directory, then ``os.replace``): a kill leaves either the whole file or none. A leftover temp
  file (``.chunk-<i>.npz…tmp``) is never read; an unreadable or malformed chunk file (e.g.
  truncated by a power cut before the data reached the disk) is recomputed.
* **keyed by a fingerprint.** The directory is ``<run_dir>/<name>-<fingerprint>``, where the
  fingerprint (:func:`fingerprint`) covers the settings, the model weights, the seed, the chunk
  size and the bytes of the inputs. Any change starts a fresh directory, so stale rows are never
  mixed into a run with other settings; the same run dir can hold many jobs side by side.
* **skip and merge.** A rerun loads the finished chunks, computes only the missing ones
  (printing ``[<name>] resuming <dir>: k/K chunks done``) and merges the rows in image order.
  A tqdm bar counts chunks.

The merged result equals an uninterrupted, unchunked run whenever an image's row does not depend
on its batch-mates — true for the inversion and for DIP with content seeding (the default of
both), whose random draws are keyed by the image itself.

Non-per-image jobs checkpoint differently: the min-max search saves its whole loop state every
segment of steps (:meth:`tf_inc.manifold.minmax.MinMaxAttack.__call__`, ``run_dir=``), using
:func:`fingerprint`, :func:`save_npz` and :func:`load_npz` from here; training resumes from
Keras checkpoints (:func:`tf_inc.training.loop.fit_resumable`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from tf_inc.bounds import check_count

#: the chunk files' reserved keys: where each chunk starts and stops (checked on load)
_META_KEYS = ("_start", "_stop")


# --------------------------------------------------------------------------- fingerprints
def _update(h, obj: Any) -> None:
    """Feed ``obj`` into the hash ``h`` (type-tagged, so ``1`` and ``"1"`` differ)."""
    if obj is None or isinstance(obj, (bool, int, str)):
        h.update(f"{type(obj).__name__}:{obj!r};".encode())
    elif isinstance(obj, float):
        h.update(f"float:{obj!r};".encode())                 # repr: exact, nan / inf included
    elif isinstance(obj, (bytes, bytearray)):
        h.update(b"bytes:%d;" % len(obj))
        h.update(bytes(obj))
    elif isinstance(obj, np.generic):
        _update(h, obj.item())
    elif isinstance(obj, np.ndarray):
        a = np.ascontiguousarray(obj)
        h.update(f"array:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    elif isinstance(obj, Path):
        _update(h, str(obj))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dataclass:{type(obj).__name__};".encode())
        _update(h, {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)})
    elif isinstance(obj, dict):
        h.update(b"dict:%d;" % len(obj))
        for k in sorted(obj, key=str):
            _update(h, str(k))
            _update(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"{type(obj).__name__}:{len(obj)};".encode())
        for v in obj:
            _update(h, v)
    elif hasattr(obj, "numpy") and hasattr(obj, "dtype") and not hasattr(obj, "weights"):
        _update(h, np.asarray(obj.numpy()))                  # a tensor or a variable
    else:
        owner = getattr(obj, "__self__", None)               # a bound method (vae.encode) → its model
        if owner is not None and hasattr(owner, "weights"):
            h.update(f"method:{getattr(obj, '__name__', '')};".encode())
            obj = owner
        weights = getattr(obj, "weights", None)
        if weights is not None:                              # a Keras model / layer: its weights
            h.update(f"model:{type(obj).__name__}:{len(weights)};".encode())
            for w in weights:
                _update(h, np.asarray(w))
        else:                                                # other callables: by name only
            h.update(f"object:{type(obj).__module__}.{getattr(obj, '__qualname__', type(obj).__qualname__)};"
                     .encode())


def fingerprint(*parts: Any) -> str:
    """A short hex digest of ``parts``: settings (dataclasses, dicts, lists, numbers, strings),
    numpy arrays / tensors (dtype, shape and bytes) and Keras models or layers (their weights).

    Equal settings, weights and inputs give the same digest in every process; changing any of
    them gives another one. A plain Python callable is known by its qualified name only.
    """
    h = hashlib.sha256()
    for p in parts:
        _update(h, p)
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- npz files
def save_npz(path: Path, **arrays) -> None:
    """``np.savez`` to ``path`` atomically (temp file + rename)."""
    from tf_inc.io import atomic_write_bytes

    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(Path(path), buf.getvalue())


def load_npz(path: Path) -> Optional[Dict[str, np.ndarray]]:
    """The arrays of ``path``, or ``None`` if it is missing or unreadable (then: recompute)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except Exception:                                     # truncated / corrupt: as if never written
        return None


# --------------------------------------------------------------------------- the row store
class RowStore:
    """Per-image rows of one job over ``n`` images, one atomically written ``.npz`` per chunk.

    Args:
      run_dir: the root directory; this job's files go to ``run_dir/<name>-<fingerprint>``.
      name: a short job name (directory prefix, log lines and progress bar).
      key: everything the rows depend on (settings, seed, models, inputs): hashed with
        :func:`fingerprint` together with ``n`` and ``chunk``.
      n: number of images (rows).
      chunk: images per chunk (the unit of work that survives a kill).
    """

    def __init__(self, run_dir, name: str, key: Any, n: int, chunk: int):
        self.name, self.n, self.chunk = str(name), check_count(n, "n"), check_count(chunk, "chunk")
        self.fingerprint = fingerprint(key, self.n, self.chunk)
        self.dir = Path(run_dir) / f"{self.name}-{self.fingerprint}"
        self.computed: List[int] = []        # chunks computed by this process (the rest were loaded)

    @property
    def n_chunks(self) -> int:
        return -(-self.n // self.chunk)

    def span(self, i: int):
        """``(start, stop)`` of chunk ``i``: a function of ``n`` and ``chunk`` only."""
        return i * self.chunk, min((i + 1) * self.chunk, self.n)

    def path(self, i: int) -> Path:
        return self.dir / f"chunk-{i:05d}.npz"

    def load(self, i: int) -> Optional[Dict[str, np.ndarray]]:
        """Rows of chunk ``i`` if it finished (a well-formed file for exactly its span), else ``None``."""
        d = load_npz(self.path(i))
        if d is None:
            return None
        start, stop = self.span(i)
        try:
            if int(d.pop("_start")) != start or int(d.pop("_stop")) != stop:
                return None
        except KeyError:
            return None
        if not d or any(v.ndim < 1 or len(v) != stop - start for v in d.values()):
            return None
        return d

    def save(self, i: int, rows: Dict[str, np.ndarray]) -> None:
        start, stop = self.span(i)
        arrays = {}
        for k, v in rows.items():
            if k.startswith("_"):
                raise ValueError(f"row names starting with '_' are reserved, got {k!r}")
            v = np.asarray(v)
            if v.ndim < 1 or len(v) != stop - start:
                raise ValueError(f"row {k!r} of chunk {i}: expected {stop - start} rows, got shape {v.shape}")
            arrays[k] = v
        save_npz(self.path(i), _start=np.int64(start), _stop=np.int64(stop), **arrays)

    def _write_meta(self, describe: Any) -> None:
        from tf_inc.io import atomic_write_json

        meta = self.dir / "meta.json"
        if not meta.exists():
            atomic_write_json(meta, {"name": self.name, "fingerprint": self.fingerprint, "n": self.n,
                                     "chunk": self.chunk, "n_chunks": self.n_chunks, "settings": describe})

    def run(self, fn: Callable[[int, int], Dict[str, np.ndarray]], progress: bool = True,
            describe: Any = None, log: Optional[Callable[[str], None]] = print) -> Dict[str, np.ndarray]:
        """Compute every missing chunk with ``fn(start, stop) -> {name: rows}`` (each array with
        ``stop - start`` rows, in image order), save it, and return all rows merged in image order.

        ``describe``: JSON-able settings written once to ``meta.json`` (for people, not checked).
        """
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_meta(describe)
        parts: Dict[int, Dict[str, np.ndarray]] = {}
        for i in range(self.n_chunks):
            d = self.load(i)
            if d is not None:
                parts[i] = d
        todo = [i for i in range(self.n_chunks) if i not in parts]
        if parts and log is not None:
            log(f"[{self.name}] resuming {self.dir}: {len(parts)}/{self.n_chunks} chunks done")
        bar = None
        if progress and todo:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.n_chunks, initial=len(parts), desc=self.name, unit="chunk")
        try:
            for i in todo:
                start, stop = self.span(i)
                rows = {k: np.asarray(v) for k, v in fn(start, stop).items()}
                self.save(i, rows)
                self.computed.append(i)
                parts[i] = rows
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return merge_rows([parts[i] for i in range(self.n_chunks)])


def merge_rows(parts: List[Dict[str, np.ndarray]]) -> Dict[str, np.ndarray]:
    """Concatenate per-chunk row dicts (in the given order); every chunk must have the same names."""
    if not parts:
        return {}
    names = set(parts[0])
    for p in parts[1:]:
        if set(p) != names:
            raise ValueError(f"chunks disagree on their row names: {sorted(names)} vs {sorted(p)}")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def run_rows(fn: Callable[[int, int], Dict[str, np.ndarray]], n: int, chunk: int, run_dir, name: str,
             key: Any, progress: bool = True, describe: Any = None) -> Dict[str, np.ndarray]:
    """:meth:`RowStore.run` in one call: ``fn(start, stop)`` over ``n`` images in chunks of ``chunk``,
    resumable from ``run_dir``."""
    return RowStore(run_dir, name, key, n, chunk).run(fn, progress=progress, describe=describe)

