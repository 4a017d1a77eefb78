"""Inversion benchmark: throughput, fraction of matmul peak, convergence and step savings.

    python bench/bench_inversion.py            # everything
    python bench/bench_inversion.py --quick    # smaller sizes

Writes ``results/bench_inversion.json`` (metric keys ``<model>/b<batch>/image_steps_per_s`` and
``<model>/b<batch>/frac_peak`` for ``vae`` b64 / b1000 / b10000 and ``began`` b64, ``peak_gflops``,
``fast/image_steps_ratio``, ``fast/max_acc_drop``; for the VAE also ``bare_fwd_grad_frac_peak``, the
decoder's forward + input gradient alone, the ceiling any inversion of it can reach) and
``bench_inversion.png``. The host's speed drifts, so the engine and the bare loop are timed
alternately (``ROUNDS``) and each keeps its best. Compares, in one run:

* ``tf-inc``: :class:`tf_inc.manifold.inversion.Projector` (one tf.function while-loop, per-row Adam);
* ``eager``: the GradientTape loop a typical TF2 user writes (``tf.Variable`` + Keras Adam);
* ``tf1``: a graph-mode port of the original TF1 ``invert`` (``tf.compat.v1`` while_loop,
  Momentum optimizer, run in a ``Session``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tf_inc.defences.inc import InvertAndClassify
from tf_inc.manifold.inversion import InversionConfig, Projector


# ----------------------------------------------------------------------------- helpers
def best_seconds(fn, reps: int = 3) -> float:
    """Shortest wall time of ``reps`` calls of ``fn`` (already traced / warmed up by the caller)."""
    best = np.inf
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def matmul_peak(n: int = 2048, reps: int = 20) -> float:
    """Float32 matmul GFLOP/s of an ``n``×``n`` dependent chain on this machine (best of 3)."""
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n)) / float(np.sqrt(n))

    @tf.function
    def run(a, b):
        # a dependent chain: grappler cannot fold repeated identical matmuls into one
        def body(i, acc):
            return i + 1, tf.matmul(acc, b)

        return tf.while_loop(lambda i, _: i < reps, body, (tf.constant(0), a))[1]

    run(a, b).numpy()
    return 2 * n**3 * reps / best_seconds(lambda: run(a, b).numpy()) / 1e9


PEAK_SIZES = (512, 1024, 1536, 2048, 3072)
ROUNDS = 3


def machine_peak(sizes=PEAK_SIZES):
    """The machine's float32 matmul peak: the best GFLOP/s over square sizes (one size alone
    misleads: measured here, 2048 ran at 93–113 GFLOP/s while 1536 and 3072 reached 117–149),
    and the per-size figures. Each size runs about 2.7 GFLOP per timing."""
    per = {n: matmul_peak(n, reps=max(2, int(round(2.7e9 / (2 * n**3))))) for n in sizes}
    return max(per.values()), per


def decoder_ceiling(G, x, steps: int) -> float:
    """Image-steps/s of the bare work every inversion step must do on ``G``: a forward pass and
    the input gradient of ||G(z) − x||², with a plain gradient step (no Adam, no keep-best, no
    early-stopping bookkeeping) in one compiled while-loop. The engine's distance to this is
    its own overhead; this figure's distance to the matmul peak is the decoder's (layer shapes,
    softplus/sigmoid, bias adds)."""
    xt = tf.reshape(tf.constant(x), [len(x), -1])

    @tf.function
    def run(z):
        def body(i, z):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(z)
                obj = tf.reduce_sum(tf.square(tf.reshape(G(z, training=False), tf.shape(xt)) - xt))
            return i + 1, z - 1e-3 * tape.gradient(obj, z)

        return tf.while_loop(lambda i, _: i < steps, body, (tf.constant(0), z), parallel_iterations=1)[1]

    z0 = tf.random.normal((len(x), G.latent_dim), stddev=G.prior_std)
    run(z0).numpy()
    return len(x) * steps / best_seconds(lambda: run(z0).numpy())


def forward_flops(model) -> float:
    """FLOPs of one forward pass per example (dense + conv layers, multiply-add = 2)."""
    import keras

    total = 0.0
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.Dense):
            total += 2.0 * layer.kernel.shape[0] * layer.kernel.shape[1]
        elif isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin, cout = layer.kernel.shape
            h, w = layer.output.shape[1:3]
            total += 2.0 * h * w * kh * kw * cin * cout
    return total


def time_engine(G, x, steps, restarts=1, reps=2):
    """Marginal image-steps/s: (T2 − T1) extra steps over the extra time, so the fixed
    per-call work (initial latents, final selection and G(z*)) is not counted as steps."""
    proj = Projector(G, InversionConfig(steps=steps, restarts=restarts, early_stop=False,
                                        batch_size=len(x)))
    short = max(1, steps // 4)
    proj(x, steps=2)  # trace

    def best_time(T):
        return best_seconds(lambda: proj(x, seed=1, steps=T), reps)

    return len(x) * restarts * (steps - short) / (best_time(steps) - best_time(short))


def time_eager(G, x, steps, lr=0.1):
    z = tf.Variable(tf.random.normal((len(x), G.latent_dim), stddev=G.prior_std))
    opt = tf.keras.optimizers.Adam(lr)
    xt = tf.constant(x)

    def one():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(G(z) - xt))
        opt.apply_gradients([(tape.gradient(loss, z), z)])

    one()
    t = time.perf_counter()
    for _ in range(steps):
        one()
    return len(x) * steps / (time.perf_counter() - t)


def time_tf1(G, x, steps, lr=0.1, momentum=0.9):
    """The original code's pattern: a TF1 graph, while_loop of Momentum steps on a z variable."""
    weights = [w.numpy() for w in G.net.weights]
    graph = tf.Graph()
    with graph.as_default():
        import keras

        g_net = keras.models.clone_model(G.net)
        x_ph = tf.compat.v1.placeholder(tf.float32, (None,) + tuple(x.shape[1:]))
        z = tf.compat.v1.get_variable("z", initializer=tf.random.normal((len(x), G.latent_dim),
                                                                        stddev=G.prior_std))
        opt = tf.compat.v1.train.MomentumOptimizer(lr * 0.01, momentum)

        def body(t):
            loss = tf.reduce_sum(tf.square(g_net(z) - x_ph))
            with tf.control_dependencies([opt.minimize(loss, var_list=[z])]):
                return t + 1

        loop = tf.compat.v1.while_loop(lambda t: t < steps, body, [tf.constant(0)])
        init = tf.compat.v1.global_variables_initializer()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(init)
            g_net.set_weights(weights)
            sess.run(loop, {x_ph: x})  # warm-up
            t = time.perf_counter()
            sess.run(loop, {x_ph: x})
            return len(x) * steps / (time.perf_counter() - t)


def throughput_table(quick: bool):
    from began.model import build_generator
    from vae.model import build_decoder

    rows = []
    vae_g = build_decoder()
    began_g = build_generator()
    x_mnist = np.random.default_rng(0).uniform(0, 1, (10000, 28, 28, 1)).astype(np.float32)
    x_celeb = np.random.default_rng(0).uniform(-1, 1, (64, 64, 64, 3)).astype(np.float32)
    for name, G, x, steps, e_steps, rounds in [
        ("vae b64", vae_g, x_mnist[:64], 500 if quick else 2000, 100, ROUNDS),
        ("vae b1000", vae_g, x_mnist[:1000], 100 if quick else 400, 20, ROUNDS),
        ("vae b10000", vae_g, x_mnist, 12 if quick else 40, 4, ROUNDS),
        ("began b64", began_g, x_celeb, 4 if quick else 8, 2, 1),      # ~3 min per round here
    ]:
        # this machine's throughput drifts by ±20 % from minute to minute (shared host): the engine
        # and the bare loop are timed alternately, ROUNDS times, and each keeps its best
        r = {"case": name, "tf_inc": 0.0, "ceiling": np.nan}
        for _ in range(rounds):
            r["tf_inc"] = max(r["tf_inc"], time_engine(G, x, steps))
            if G is vae_g:          # the bare loop is the VAE's question (BEGAN already runs near peak)
                r["ceiling"] = np.nanmax([r["ceiling"], decoder_ceiling(G, x, steps)])
        r["eager"] = time_eager(G, x, e_steps)
        r["tf1_graph"] = time_tf1(G, x, max(2, steps // 4))
        rows.append(r)
        print(f"  {name:10s} tf-inc {r['tf_inc']:10.0f}  bare fwd+grad {r['ceiling']:10.0f}  eager {r['eager']:10.0f}"
              f"  tf1 {r['tf1_graph']:10.0f} image-steps/s", flush=True)
    began_flops = 2 * forward_flops(began_g.net)  # forward + input-gradient backward
    vae_flops = 2 * forward_flops(vae_g.net)
    return rows, began_flops, vae_flops


def convergence(quick: bool):
    """Steps each image needs to reach within 1 % of its 5000-step error, and INC accuracy vs steps."""
    from tf_inc.attacks import fgsm
    from tf_inc.data.mnist import load_mnist
    from tf_inc.experiments import zoo

    clf, G, encode = zoo.dataset_models("mnist")
    n = 100 if quick else 200
    x, y = load_mnist("test", n)
    grid = [25, 50, 100, 200, 300, 500, 750, 1000, 1500, 2000, 3000, 5000]
    errs = {}
    proj = Projector(G, InversionConfig(steps=5000, restarts=1, early_stop=False, batch_size=n))
    for T in grid:
        errs[T] = proj(x, seed=0, steps=T).l2
    final = errs[5000]
    need = np.array([min(T for T in grid if errs[T][i] <= 1.01 * final[i]) for i in range(n)])
    conv = {"grid": grid, "mean_l2": [float(errs[T].mean()) for T in grid],
            "steps_to_1pct_mean": float(need.mean()), "steps_to_1pct_median": float(np.median(need)),
            "steps_to_1pct_p90": float(np.percentile(need, 90))}

    # equal-accuracy comparison: paper-style (1000 steps, no early stop) vs tf-inc's defaults
    x_adv = fgsm(clf, x, y, 0.2).numpy()
    xs = np.concatenate([x, x_adv])
    settings = {
        "baseline_1000_steps_R4": (InversionConfig(steps=1000, restarts=4, early_stop=False), None),
        "early_stop_R4": (InversionConfig(steps=1000, restarts=4, early_stop=True, patience=100), None),
        "early_stop_warm_start_R4": (InversionConfig(steps=1000, restarts=4, early_stop=True, patience=100,
                                                     warm_start=True), encode),
        "cosine_250_R4": (InversionConfig(steps=250, restarts=4, early_stop=False, lr_schedule="cosine"), None),
        "cosine_300_R2_warm_start": (InversionConfig(steps=300, restarts=2, early_stop=False, lr_schedule="cosine",
                                                     warm_start=True), encode),
    }
    cut = {}
    for key, (cfg, enc) in settings.items():
        inc = InvertAndClassify(G, clf, cfg, seed=0, encoder=enc)
        t = time.perf_counter()
        out = inc.predict(xs)
        dt = time.perf_counter() - t
        lab = out["label"]
        cut[key] = {"clean_acc": float((lab[:n] == y).mean()), "fgsm0.2_acc": float((lab[n:] == y).mean()),
                    "total_steps": int(out["result"].total_steps), "seconds": dt,
                    "mean_l2": float(out["result"].l2.mean())}
        print(f"  {key:28s} clean {cut[key]['clean_acc']:.3f} fgsm0.2 {cut[key]['fgsm0.2_acc']:.3f} "
              f"steps {cut[key]['total_steps']:9d} time {dt:6.1f}s", flush=True)
    base = cut["baseline_1000_steps_R4"]["total_steps"]
    for k in cut:
        cut[k]["step_reduction"] = base / cut[k]["total_steps"]
    return conv, cut


def fast_preset(quick: bool):
    """Figure 3 with the ``paper`` and the ``fast`` inversion presets, same images and seed:
    image-steps, seconds and INC accuracy per ε of each; the fast preset's step ratio and its
    largest accuracy drop below the paper run (issue 16's time-to-accuracy target)."""
    import tempfile

    from tf_inc.experiments.figure3_mnist_fgsm import Figure3Config, run as figure3

    n = 100 if quick else Figure3Config.n
    rec = {}
    with tempfile.TemporaryDirectory() as tmp:
        for preset in ("paper", "fast"):
            t = time.perf_counter()
            figure3(Figure3Config(n=n, preset=preset, out=tmp))
            seconds = time.perf_counter() - t
            m = json.loads((Path(tmp) / "figure3_mnist_fgsm.json").read_text())["metrics"]
            rec[preset] = {"inc_acc": m["inc_acc"], "image_steps": m["inc_total_steps"], "seconds": seconds,
                           "eps": m["eps"]}
            print(f"  figure 3 ({preset:5s}, n={n}): {m['inc_total_steps']:9d} image-steps, {seconds:6.1f} s, "
                  f"INC acc {[round(a, 3) for a in m['inc_acc']]}", flush=True)
    paper, fast = rec["paper"], rec["fast"]
    drops = [p - f for p, f in zip(paper["inc_acc"], fast["inc_acc"])]
    return {
        "fast/n": n,
        "fast/eps": paper["eps"],
        "fast/paper_inc_acc": paper["inc_acc"],
        "fast/fast_inc_acc": fast["inc_acc"],
        "fast/paper_image_steps": paper["image_steps"],
        "fast/fast_image_steps": fast["image_steps"],
        "fast/paper_seconds": paper["seconds"],
        "fast/fast_seconds": fast["seconds"],
        "fast/image_steps_ratio": fast["image_steps"] / paper["image_steps"],
        "fast/max_acc_drop": max(drops),
    }


def figure(metrics):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2 if "fast/eps" in metrics else 1, figsize=(11, 4), squeeze=False)
    ax = axes[0, 0]
    cases = [k[: -len("/frac_peak")] for k in metrics if k.endswith("/frac_peak")]
    pos = np.arange(len(cases))
    ax.bar(pos - 0.2, [metrics[f"{c}/frac_peak"] for c in cases], 0.4, color="tab:blue", label="tf-inc inversion")
    ax.bar(pos + 0.2, [metrics.get(f"{c}/bare_fwd_grad_frac_peak", np.nan) for c in cases], 0.4,
           color="tab:gray", label="bare forward + input gradient")
    ax.set_xticks(pos, cases)
    ax.axhline(0.8, color="tab:red", ls="--", label="target 0.8")
    ax.set_ylabel("fraction of measured fp32 matmul peak")
    ax.set_title(f"inversion throughput (peak {metrics['peak_gflops']:.0f} GFLOP/s, CPU)")
    ax.legend()
    if "fast/eps" in metrics:
        ax = axes[0, 1]
        ax.plot(metrics["fast/eps"], metrics["fast/paper_inc_acc"], "o-", label="paper preset")
        ax.plot(metrics["fast/eps"], metrics["fast/fast_inc_acc"], "s--",
                label=f"fast preset ({metrics['fast/image_steps_ratio']:.2f}x image-steps)")
        ax.set_xlabel("FGSM ε")
        ax.set_ylabel("INC accuracy")
        ax.set_title(f"Figure 3, n={metrics['fast/n']}: max drop {metrics['fast/max_acc_drop'] * 100:.1f} pt")
        ax.legend()
    fig.tight_layout()
    return fig


def main(argv=None):
    from tf_inc.experiments.results import write_results

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (and Figure 3 on 100 images)")
    ap.add_argument("--out", default="results", help="output directory (bench_inversion.json / .png)")
    ap.add_argument("--skip-convergence", action="store_true", help="skip the per-image convergence study")
    ap.add_argument("--skip-fast", action="store_true", help="skip the paper-vs-fast preset Figure 3 runs")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    print(f"TensorFlow {tf.__version__}, threads intra={tf.config.threading.get_intra_op_parallelism_threads()}")
    peak, per_size = machine_peak()
    print(f"measured float32 matmul peak: {peak:.1f} GFLOP/s (best of sizes "
          + ", ".join(f"{n}: {g:.0f}" for n, g in per_size.items()) + ")", flush=True)
    rows, began_flops, vae_flops = throughput_table(args.quick)
    peak_after, per_after = machine_peak()          # the peak is a maximum: measured before and after
    per_size = {n: max(g, per_after[n]) for n, g in per_size.items()}
    peak = max(peak, peak_after)
    print(f"matmul peak after the throughput runs: {peak_after:.1f} GFLOP/s; used: {peak:.1f}", flush=True)
    metrics = {"peak_gflops": peak, "vae/flops_per_image_step": vae_flops, "began/flops_per_image_step": began_flops}
    metrics.update({f"peak_gflops/n{n}": g for n, g in per_size.items()})
    for r in rows:
        model, batch = r["case"].split()
        flops = vae_flops if model == "vae" else began_flops
        key = f"{model}/{batch}"
        metrics[f"{key}/image_steps_per_s"] = r["tf_inc"]
        metrics[f"{key}/frac_peak"] = r["tf_inc"] * flops / 1e9 / peak
        if np.isfinite(r["ceiling"]):
            metrics[f"{key}/bare_fwd_grad_image_steps_per_s"] = r["ceiling"]
            metrics[f"{key}/bare_fwd_grad_frac_peak"] = r["ceiling"] * flops / 1e9 / peak
            metrics[f"{key}/engine_vs_bare"] = r["tf_inc"] / r["ceiling"]
        metrics[f"{key}/eager_image_steps_per_s"] = r["eager"]
        metrics[f"{key}/tf1_graph_image_steps_per_s"] = r["tf1_graph"]
        bare = metrics.get(f"{key}/bare_fwd_grad_frac_peak", np.nan) * 100
        print(f"  {key:12s} {metrics[f'{key}/frac_peak'] * 100:5.1f} % of peak (bare forward + input gradient: "
              f"{bare:5.1f} %)", flush=True)
    metrics["mnist_10000x1000_projected_seconds"] = 10000 * 1000 / metrics["vae/b10000/image_steps_per_s"]
    if not args.skip_fast:
        metrics.update(fast_preset(args.quick))
    if not args.skip_convergence:
        conv, cut = convergence(args.quick)
        metrics.update({f"convergence/{k}": v for k, v in conv.items()})
        for name, c in cut.items():
            metrics.update({f"step_cutting/{name}/{k}": v for k, v in c.items()})
        print(f"steps to within 1% of the 5000-step error: mean {conv['steps_to_1pct_mean']:.0f}, "
              f"median {conv['steps_to_1pct_median']:.0f}, p90 {conv['steps_to_1pct_p90']:.0f}")
    paths = write_results("bench_inversion", out=args.out, paper_ref="issue 16 (inversion speed)", dataset="mnist",
                          config={**vars(args), "device": "CPU (no GPU here)",
                                  "flops": "forward + input-gradient backward per image-step (weights frozen)"},
                          metrics=metrics, runtime_s=time.perf_counter() - t0, figures={"": figure(metrics)})
    print(f"figure: {paths['png'].resolve()}")
    print(f"results: {paths['json'].resolve()}")


if __name__ == "__main__":
    main()
