"""Result files of the experiments: timing, the shared JSON record, figures, written atomically.

Each script declares one config dataclass (paper values as defaults, the
common ``dataset``/``n``/``seed``/``out`` fields included) and ends with
:func:`write_results`, which writes ``<out>/<name>.json`` in the shared result
format plus the figures, atomically; the script prints their paths
(:func:`print_outputs`, via :func:`tf_inc.cli.run_script`).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Optional

from tf_inc.io import atomic_write_json, result_record, save_figure


class Timer:
    def __init__(self):
        self.start = time.time()

    @property
    def elapsed(self) -> float:
        return time.time() - self.start


def write_results(
    name: str,
    *,
    out: str,
    paper_ref: str,
    dataset: str,
    config: Any,
    metrics: Dict[str, Any],
    paper: Optional[Dict[str, Any]] = None,
    runtime_s: float,
    figures: Optional[Dict[str, Any]] = None,
) -> Dict[str, Path]:
    """Write ``<out>/<name>.json`` and each figure as ``<out>/<name><suffix>.png``.

    ``figures`` maps a suffix ("" for the main figure, "_recon" …) to a matplotlib figure.
    """
    import matplotlib.pyplot as plt

    out_dir = Path(out)
    paths: Dict[str, Path] = {}
    for suffix, fig in (figures or {}).items():
        p = out_dir / f"{name}{suffix}.png"
        save_figure(fig, p)
        plt.close(fig)
        paths["png" + suffix] = p
    record = result_record(name, paper_ref, dataset, config, metrics, paper or {}, runtime_s)
    jp = out_dir / f"{name}.json"
    atomic_write_json(jp, record)
    paths["json"] = jp
    return paths


def print_outputs(paths: Dict[str, Path]) -> None:
    """Print where the figures and the result JSON went (the JSON last, as the scripts promise)."""
    for key, p in paths.items():
        if key != "json":
            print(f"figure: {Path(p).resolve()}")
    print(f"results: {Path(paths['json']).resolve()}", flush=True)
