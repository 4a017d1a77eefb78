"""Deep Image Prior benchmark: K networks fitted at once vs one image at a time, same results.

    python bench/bench_dip.py            # MNIST digits, the MNIST skip network (~10 min on 2 cores)
    python bench/bench_dip.py --quick    # smaller

Writes ``results/bench_dip.json`` (+ ``.png``, images per hour per mode) and prints a table. Modes, all on the same real digits:

* ``one_at_a_time``: :class:`tf_inc.defences.dip.DIPFitter` with ``batch_size=1``, one call
  (one compiled while-loop) per image: what fitting image after image costs;
* ``batched_K``: the same fitter with ``batch_size=K``: K networks with stacked weights in one
  loop, each with its own Adam state and early stop;
* ``keras_loop``: the network built from standard Keras layers
  (:func:`tf_inc.models.skip_net.build_keras_skip_net`, oneDNN convolutions), a compiled
  ``train_step`` called once per iteration from Python, Keras Adam: how DIP is usually written.
  Different random draws and kernels, so its outputs are not comparable bit for bit.

Two schedules: a fixed number of iterations with no early stop (pure throughput) and the paper's
(≤ 500 iterations, stop at MSE < 0.005), where batched rows leave the batch as they stop.
For every schedule the batched outputs, iteration counts and MSEs are compared with the
one-at-a-time ones and must be *identical* (``identical`` in the JSON). The machine is shared,
so modes are interleaved over ``--reps`` rounds and the best round is kept; CPU seconds of the
process are reported beside the wall clock.
"""
from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import tensorflow as tf

from tf_inc.defences.dip import DIPConfig, DIPFitter
from tf_inc.experiments.results import print_outputs, write_results
from tf_inc.models.skip_net import SkipNetConfig, build_keras_skip_net


def clocked(fn):
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w, time.process_time() - c


def fit_one_at_a_time(fitter, x, **kw):
    parts = [fitter(x[i:i + 1], **kw) for i in range(len(x))]
    return (np.concatenate([p.x_hat for p in parts]), np.concatenate([p.iterations for p in parts]),
            np.concatenate([p.mse for p in parts]))


def fit_batched(fitter, x, **kw):
    r = fitter(x, **kw)
    return r.x_hat, r.iterations, r.mse


def make_keras_loop(net_cfg, image_shape, lr: float):
    """The usual DIP implementation: a Keras model per image, Keras Adam, one graph call per step.
    Returns ``run(x, iterations)``; the model, optimizer and compiled step are built once."""
    import keras

    model = build_keras_skip_net(net_cfg, image_shape)
    code_shape = model.input_shape[1:]
    opt = keras.optimizers.Adam(lr)
    opt.build(model.trainable_weights)
    init = [w.numpy() for w in model.weights]

    @tf.function
    def step(z, target):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(z, training=True) - target))
        grads = tape.gradient(loss, model.trainable_weights)
        opt.apply_gradients(zip(grads, model.trainable_weights))
        return loss

    def run(x, iterations: int):
        for i in range(len(x)):
            model.set_weights(init)                      # a fresh network per image
            for v in opt.variables:
                v.assign(tf.zeros_like(v))
            z = tf.random.stateless_uniform((1, *code_shape), (i, 0), 0.0, 0.1)
            target = tf.constant(x[i:i + 1])
            for _ in range(iterations):
                step(z, target)

    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="digits per measurement")
    ap.add_argument("--iterations", type=int, default=100, help="iterations of the fixed schedule")
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[8, 32])
    ap.add_argument("--reps", type=int, default=2, help="interleaved rounds (best kept)")
    ap.add_argument("--keras-n", type=int, default=4, help="digits for the Keras-loop reference")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default="results")
    args = ap.parse_args()
    if args.quick:
        args.n, args.iterations, args.batch_sizes, args.reps, args.keras_n = 8, 30, [8], 1, 2

    from tf_inc.data.mnist import load_mnist

    t_start = time.perf_counter()
    x, _ = load_mnist("test", args.n)
    net_cfg = SkipNetConfig.mnist()
    schedules = {
        f"fixed_{args.iterations}": dict(max_iterations=args.iterations, mse_threshold=0.0),
        "paper_500_mse0.005": dict(max_iterations=500, mse_threshold=0.005),
    }
    fitters = {k: DIPFitter(x.shape[1:], DIPConfig(batch_size=k), net_cfg) for k in [1, *args.batch_sizes]}
    for f in fitters.values():                     # trace once, outside the timings
        f(x[:1], max_iterations=2, mse_threshold=0.0)
    load_before = os.getloadavg()
    record = {
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "tensorflow": tf.__version__,
                    "load_avg_before": load_before},
        "config": {"n": args.n, "image_shape": list(x.shape[1:]), "net": str(net_cfg),
                   "num_params_per_network": fitters[1].net.num_params, "reps": args.reps},
        "schedules": {},
    }
    print(f"[bench_dip] {args.n} MNIST digits, skip net {fitters[1].net.num_params} weights/network, "
          f"load avg {load_before[0]:.1f} on {os.cpu_count()} cores")
    for sname, kw in schedules.items():
        best = {}
        outs = {}
        for _ in range(args.reps):
            modes = [("one_at_a_time", lambda: fit_one_at_a_time(fitters[1], x, **kw))]
            modes += [(f"batched_{k}", lambda k=k: fit_batched(fitters[k], x, **kw)) for k in args.batch_sizes]
            for mode, fn in modes:
                out, wall, cpu = clocked(fn)
                outs[mode] = out
                b = best.setdefault(mode, {"wall_s": np.inf, "cpu_s": np.inf})
                b["wall_s"], b["cpu_s"] = min(b["wall_s"], wall), min(b["cpu_s"], cpu)
        ref = outs["one_at_a_time"]
        rows = {}
        for mode, b in best.items():
            o = outs[mode]
            rows[mode] = {
                **b,
                "images_per_hour": 3600.0 * args.n / b["wall_s"],
                "images_per_cpu_hour": 3600.0 * args.n / b["cpu_s"],
                "image_iterations_per_s": float(o[1].sum()) / b["wall_s"],
                "mean_iterations": float(o[1].mean()),
                "speedup_wall": best["one_at_a_time"]["wall_s"] / b["wall_s"],
                "speedup_cpu": best["one_at_a_time"]["cpu_s"] / b["cpu_s"],
                "identical": bool(np.array_equal(o[0], ref[0]) and np.array_equal(o[1], ref[1])
                                  and np.array_equal(o[2], ref[2])),
                "max_abs_diff": float(np.abs(o[0] - ref[0]).max()),
            }
            print(f"  {sname:<20} {mode:<14} {rows[mode]['images_per_hour']:9.0f} img/h  "
                  f"x{rows[mode]['speedup_wall']:.2f} wall, x{rows[mode]['speedup_cpu']:.2f} cpu, "
                  f"{rows[mode]['mean_iterations']:.1f} it/img, identical={rows[mode]['identical']}", flush=True)
        record["schedules"][sname] = rows

    # the usual Keras implementation, fixed schedule only (its own draws: speed reference only)
    it = args.iterations
    keras_loop = make_keras_loop(net_cfg, x.shape[1:], 0.01)
    keras_loop(x[:1], 2)                           # trace
    _, wall, cpu = clocked(lambda: keras_loop(x[:args.keras_n], it))
    fixed = record["schedules"][f"fixed_{it}"]
    record["keras_loop"] = {"n": args.keras_n, "iterations": it, "wall_s": wall, "cpu_s": cpu,
                            "images_per_hour": 3600.0 * args.keras_n / wall,
                            "images_per_cpu_hour": 3600.0 * args.keras_n / cpu}
    best_batched = max((r for m, r in fixed.items() if m.startswith("batched")), key=lambda r: r["images_per_hour"])
    record["keras_loop"]["batched_speedup_wall"] = best_batched["images_per_hour"] / record["keras_loop"]["images_per_hour"]
    print(f"  fixed_{it:<14} keras_loop     {record['keras_loop']['images_per_hour']:9.0f} img/h "
          f"(best batched is x{record['keras_loop']['batched_speedup_wall']:.2f})")
    record["machine"]["load_avg_after"] = os.getloadavg()
    gpu_note = ("estimate only, not measured: on a GPU one-at-a-time fits of a network this small are "
                "launch-bound, so stacking K networks is expected to gain about an order of magnitude")
    # the project's result format (docs/CONVENTIONS.md): flat metrics, the settings as config
    metrics = {"n": args.n, "num_params_per_network": record["config"]["num_params_per_network"],
               "load_avg_1min_before": load_before[0], "load_avg_1min_after": record["machine"]["load_avg_after"][0]}
    for sname, rows in record["schedules"].items():
        for mode, r in rows.items():
            for k in ("images_per_hour", "images_per_cpu_hour", "speedup_wall", "speedup_cpu", "mean_iterations",
                      "identical", "max_abs_diff", "wall_s", "cpu_s"):
                metrics[f"{sname}/{mode}/{k}"] = r[k]
    for k in ("images_per_hour", "images_per_cpu_hour", "batched_speedup_wall"):
        metrics[f"keras_loop/{k}"] = record["keras_loop"][k]
    config = {**{k: v for k, v in vars(args).items() if k != "out"}, "net": str(net_cfg),
              "image_shape": list(x.shape[1:]), "machine": record["machine"], "gpu_note": gpu_note}
    paths = write_results("bench_dip", out=args.out, paper_ref="benchmark: K DIP fits at once vs one at a time",
                          dataset="mnist", config=config, metrics=metrics, runtime_s=time.perf_counter() - t_start,
                          figures={"": _figure(record, args.n)})
    print_outputs(paths)


def _figure(record, n):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    scheds = list(record["schedules"])
    modes = list(record["schedules"][scheds[0]])
    w = 0.8 / len(modes)
    for j, mode in enumerate(modes):
        vals = [record["schedules"][s][mode]["images_per_hour"] for s in scheds]
        bars = ax.bar(np.arange(len(scheds)) + (j - (len(modes) - 1) / 2) * w, vals, w, label=mode)
        for b, s in zip(bars, scheds):
            ax.annotate(f"×{record['schedules'][s][mode]['speedup_wall']:.2f}", (b.get_x() + b.get_width() / 2,
                        b.get_height()), ha="center", va="bottom", fontsize=7)
    k = record["keras_loop"]
    ax.axhline(k["images_per_hour"], color="k", ls=":", lw=1, label=f"Keras train_step loop ({scheds[0]})")
    ax.set_xticks(np.arange(len(scheds)), scheds)
    ax.set_ylabel("images per hour (wall clock)")
    ax.set_title(f"DIP fits on {n} MNIST digits, {os.cpu_count()} CPU cores (identical outputs)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    main()
