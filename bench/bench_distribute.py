"""Scaling of the sharded inversion: images/s against the number of tf.distribute replicas.

    python bench/bench_distribute.py                  # 1 and 2 replicas (~3 min on 2 idle cores)
    python bench/bench_distribute.py --max-replicas 4 --n 512

Splits this host's CPU into ``max_replicas`` logical devices (before TensorFlow initialises them),
then projects the same ``n`` MNIST test digits onto the VAE decoder's range (Alg. 1 step 1,
``steps`` Adam steps, no early stopping so every configuration does the same work):

* ``none``: :func:`tf_inc.manifold.inversion.project` without a strategy (the library default);
* ``replicas_<k>``: the same call with ``strategy=MirroredStrategy(<k logical CPU devices>)``,
  which shards the images over the ``k`` replicas (``batch_size`` images per replica per call)
  and gathers the rows back in input order (:mod:`tf_inc.experiments.sharding`).

**These are CPU numbers.** Logical CPU devices share the same physical cores and the same
thread pool, so on this machine no speed-up is expected: the figure measures the overhead of
sharding and gathering, not the gain. On a host with ``k`` GPUs each replica has its own device;
any GPU figure quoted next to this one is an estimate, not a measurement.

Writes ``<out>/bench_distribute.json`` (metrics ``<config>/images_per_s``,
``<config>/image_steps_per_s``, ``<config>/seconds``, ``replicas_<k>/max_abs_dz_vs_none``,
``speedup_<k>_vs_1``) and ``<out>/bench_distribute.png``.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from tf_inc.cli import run_script  # no TensorFlow op runs at import (the package is installed editable)


@dataclass
class BenchDistributeConfig:
    """Images/s of the sharded inversion vs replicas (logical CPU devices here)."""

    dataset: str = field(default="mnist", metadata={"help": "only mnist (the shipped VAE decoder)",
                                                    "choices": ["mnist"]})
    n: int = field(default=256, metadata={"help": "test digits projected per timed call"})
    steps: int = field(default=100, metadata={"help": "Adam steps per image (early stopping off)"})
    restarts: int = field(default=1, metadata={"help": "random restarts per image"})
    batch_size: int = field(default=128, metadata={"help": "images per replica per graph call"})
    max_replicas: int = field(default=2, metadata={"help": "logical CPU devices to split the host into"})
    repeats: int = field(default=3, metadata={"help": "timed calls per configuration (after one warm-up)"})
    seed: int = field(default=0, metadata={"help": "restart seed"})
    out: str = field(default="results", metadata={"help": "output directory"})


def _generator():
    """The shipped VAE decoder if present; else an untrained one of the same architecture (same FLOPs)."""
    from tf_inc.paths import model_path

    path = model_path("mnist_vae.keras")
    if path.exists():
        from tf_inc.experiments import zoo

        return zoo.load("mnist_vae.keras").decoder, f"shipped {path.name}"
    from vae.model import build_decoder

    print(f"[bench] {path} not found: timing an untrained decoder of the same architecture", flush=True)
    return build_decoder(), "untrained mnist VAE decoder (same architecture and FLOPs)"


def _time(fn, repeats: int):
    """Wall and CPU seconds (this process, all threads) of each of ``repeats`` calls after a warm-up."""
    fn()                                            # trace + warm up
    times, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return out, times, cpu


def run(cfg: BenchDistributeConfig):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cfg.max_replicas)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from tf_inc.data.mnist import load_mnist
    from tf_inc.experiments.results import Timer, write_results
    from tf_inc.manifold.inversion import InversionConfig, Projector
    from tf_inc.training.distribute import make_strategy

    timer = Timer()
    G, generator_desc = _generator()
    x, _ = load_mnist("test", cfg.n)
    proj = Projector(G, InversionConfig(steps=cfg.steps, restarts=cfg.restarts, early_stop=False,
                                        batch_size=cfg.batch_size))
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    configs = {"none": None}
    for k in range(1, cfg.max_replicas + 1):
        configs[f"replicas_{k}"] = make_strategy("mirrored", devices=devices[:k])

    metrics, z = {"load_avg_1min_at_start": os.getloadavg()[0]}, {}
    for name, strategy in configs.items():
        res, times, cpu = _time(lambda s=strategy: proj(x, seed=cfg.seed, strategy=s), cfg.repeats)
        best, median, cpu_median = min(times), float(np.median(times)), float(np.median(cpu))
        z[name] = res.z
        metrics[f"{name}/seconds"] = median
        metrics[f"{name}/seconds_best"] = best
        metrics[f"{name}/cpu_seconds"] = cpu_median
        metrics[f"{name}/images_per_s"] = cfg.n / median
        metrics[f"{name}/image_steps_per_s"] = cfg.n * cfg.steps * cfg.restarts / median
        # load-independent: images per CPU-second this process used (a busy host gives a process
        # with more runnable threads a larger share of the cores, which wall-clock rates include)
        metrics[f"{name}/images_per_cpu_s"] = cfg.n / cpu_median
        if name != "none":
            metrics[f"{name}/max_abs_dz_vs_none"] = float(np.abs(res.z - z["none"]).max())
        print(f"[bench] {name:>11}: {cfg.n / median:7.1f} images/s (median of {len(times)}, best "
              f"{cfg.n / best:.1f}); {cfg.n / cpu_median:6.1f} images per CPU-second; "
              f"{cfg.n * cfg.steps * cfg.restarts / median:,.0f} image-steps/s", flush=True)
    base = metrics["replicas_1/images_per_s"]
    for k in range(2, cfg.max_replicas + 1):
        metrics[f"speedup_{k}_vs_1"] = metrics[f"replicas_{k}/images_per_s"] / base
        metrics[f"cpu_efficiency_{k}_vs_1"] = (metrics[f"replicas_{k}/images_per_cpu_s"]
                                               / metrics["replicas_1/images_per_cpu_s"])
    metrics["cpu_count"] = os.cpu_count()
    metrics["load_avg_1min_at_end"] = os.getloadavg()[0]

    ks = list(range(1, cfg.max_replicas + 1))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, label in ((axes[0], "images_per_s", "images / s (wall clock)"),
                           (axes[1], "images_per_cpu_s", "images / CPU-second")):
        ax.plot(ks, [metrics[f"replicas_{k}/{key}"] for k in ks], "o-", label="sharded (MirroredStrategy)")
        ax.axhline(metrics[f"none/{key}"], color="gray", ls="--", label="no strategy")
        if key == "images_per_s":
            ax.plot(ks, [base * k for k in ks], ":", color="C1", label="ideal (one device per replica)")
            ax.legend(fontsize=7)
        ax.set_xticks(ks)
        ax.set_xlabel("replicas (logical CPU devices on one host)")
        ax.set_ylabel(label)
        ax.set_ylim(bottom=0)
    fig.suptitle(f"INC inversion throughput — CPU ({os.cpu_count()} cores shared by all replicas, load "
                 f"{metrics['load_avg_1min_at_start']:.0f}); MNIST VAE, n={cfg.n}, {cfg.steps} steps, "
                 f"R={cfg.restarts}, {cfg.batch_size} img/replica/call", fontsize=8)
    config = {**cfg.__dict__, "generator": generator_desc, "devices": devices,
              "tensorflow": tf.__version__, "hardware": "CPU (logical devices share the physical cores)"}
    return write_results("bench_distribute", out=cfg.out, paper_ref="none (engineering benchmark)",
                         dataset=cfg.dataset, config=config, metrics=metrics, runtime_s=timer.elapsed,
                         figures={"": fig})


if __name__ == "__main__":
    run_script(BenchDistributeConfig, run)
