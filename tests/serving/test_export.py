"""SavedModel export: TF-Serving layout, no py_function, no devices, same outputs in a clean process."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tf_inc.defences.inc import InvertAndClassify
from tf_inc.manifold.inversion import InversionConfig
from tf_inc.serving.export import (
    FORBIDDEN_OPS,
    export_classifier,
    export_encoder,
    export_generator,
    export_inc,
    graph_ops,
    is_checkpoint_function,
)

STEPS = 120

# The child process must not see the project: its packages are blocked outright.
CHILD = textwrap.dedent("""
    import json, sys, time
    for mod in ("tf_inc", "vae", "began"):
        sys.modules[mod] = None          # any import of project code now fails
    import numpy as np, tensorflow as tf
    base, x_path = sys.argv[1], sys.argv[2]
    x = np.load(x_path)
    out = {}
    clf = tf.saved_model.load(base + "/mnist_classifier/1")
    out["clf_probs"] = clf.signatures["serving_default"](images=tf.constant(x))["probabilities"].numpy().tolist()
    gen = tf.saved_model.load(base + "/mnist_generator/1")
    z = np.load(x_path.replace("x.npy", "z.npy"))
    out["gen_images"] = gen.signatures["serving_default"](latent=tf.constant(z))["images"].numpy().tolist()
    inc = tf.saved_model.load(base + "/mnist_inc/1")
    f = inc.signatures["serving_default"]
    f(images=tf.constant(x[:2]))
    t = time.perf_counter(); r = f(images=tf.constant(x)); dt = time.perf_counter() - t
    out["inc_classes"] = r["classes"].numpy().tolist()
    out["inc_error"] = r["reconstruction_error"].numpy().tolist()
    out["inc_rejected"] = r["rejected"].numpy().tolist()
    out["inc_latency_per_image_s"] = dt / len(x)
    g = inc.signatures["inc_with_options"]
    r2 = g(images=tf.constant(x), steps=tf.constant(%d), eta=tf.constant(0.0), seed=tf.constant(0))
    out["inc_opts_rejected"] = r2["rejected"].numpy().tolist()
    try:
        f(images=tf.constant(x * 0 + 5.0))
        out["range_error"] = None
    except tf.errors.InvalidArgumentError as e:
        out["range_error"] = str(e.message)[:200]
    print("RESULT" + json.dumps(out))
""" % STEPS)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, trained_classifier, trained_vae):
    base = tmp_path_factory.mktemp("serving")
    cfg = InversionConfig(steps=STEPS, restarts=2)
    paths = {
        "clf": export_classifier(trained_classifier, base, "mnist_classifier", (28, 28, 1), (0.0, 1.0)),
        "gen": export_generator(trained_vae.decoder, base, "mnist_generator"),
        "enc": export_encoder(trained_vae.encoder, base, "mnist_encoder", (28, 28, 1), (0.0, 1.0)),
        "inc": export_inc(trained_vae.decoder, trained_classifier, base, "mnist_inc", cfg, eta=8.0, seed=0),
    }
    return base, paths, cfg


def test_layout_and_graph_is_servable(exported):
    base, paths, _ = exported
    for name in ("mnist_classifier", "mnist_generator", "mnist_encoder", "mnist_inc"):
        assert (base / name / "1" / "saved_model.pb").exists()
    for p in paths.values():
        ops = graph_ops(p)
        assert ops, p
        bad = {op for op, _ in ops} & FORBIDDEN_OPS
        assert not bad, f"{p}: ops TF Serving cannot run: {bad}"
        # compute must not be pinned to a device; only tf.saved_model's checkpoint I/O
        # functions carry the host-CPU placement every SavedModel has
        pinned = {(op, d, f) for op, d, f in graph_ops(p, with_function=True)
                  if d and not is_checkpoint_function(f)}
        assert not pinned, f"{p}: device placement baked into the graph: {sorted(pinned)[:5]}"
        assert not any("GPU" in d.upper() for _, d in ops)
    assert "While" in {op for op, _ in graph_ops(paths["inc"])} or "StatelessWhile" in {
        op for op, _ in graph_ops(paths["inc"])}


def test_clean_process_outputs_match(exported, trained_classifier, trained_vae, mnist_test, tmp_path):
    base, _, cfg = exported
    x = mnist_test[0][:16]
    z = trained_vae.decoder.sample_prior(4, seed=5).numpy()
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "z.npy", z)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    proc = subprocess.run([sys.executable, "-c", CHILD, str(base), str(tmp_path / "x.npy")], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.split("RESULT", 1)[1])

    np.testing.assert_allclose(out["clf_probs"], _softmax(trained_classifier(x).numpy()), atol=1e-5)
    np.testing.assert_allclose(out["gen_images"], trained_vae.decoder(z).numpy(), atol=1e-5)
    inc = InvertAndClassify(trained_vae.decoder, trained_classifier, cfg, eta=8.0, seed=0)
    ref = inc.predict(x)
    assert out["inc_classes"] == ref["label"].tolist()
    np.testing.assert_allclose(out["inc_error"], ref["result"].l2, rtol=1e-3, atol=1e-3)
    assert out["inc_rejected"] == ref["rejected"].tolist()
    assert all(out["inc_opts_rejected"])                    # eta = 0 rejects everything
    assert out["range_error"] is not None and "must lie in [0.0, 1.0]" in out["range_error"]
    print(f"INC serving latency: {out['inc_latency_per_image_s'] * 1000:.1f} ms/image "
          f"({STEPS} steps, {cfg.restarts} restarts, batch {len(x)})")


def _softmax(l):
    e = np.exp(l - l.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


@pytest.mark.slow
def test_saved_model_cli_show_and_run(exported, tmp_path):
    base, paths, _ = exported
    cli = Path(sys.executable).parent / "saved_model_cli"
    if not cli.exists():
        pytest.skip("saved_model_cli is not installed next to this Python")
    show = subprocess.run([str(cli), "show", "--all", "--dir", str(paths["inc"])], capture_output=True,
                          text=True, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for word in ("serving_default", "inc_with_options", "images", "probabilities", "rejected",
                 "reconstruction_error"):
        assert word in show.stdout
    np.save(tmp_path / "in.npy", np.full((2, 28, 28, 1), 0.1, np.float32))
    run = subprocess.run([str(cli), "run", "--dir", str(paths["inc"]), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs", f"images={tmp_path / 'in.npy'}"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "classes" in run.stdout and "probabilities" in run.stdout


def test_served_inc_answers_an_image_the_same_in_any_batch(exported, mnist_test):
    """Issue 18 for the SavedModel: through its serving signatures, an image's class, rejection
    flag and reconstruction do not depend on the batch order, the batch size (one image alone
    included) or on a copy of it in the same batch."""
    import tensorflow as tf

    base, paths, _ = exported
    served = tf.saved_model.load(str(paths["inc"]))
    serve, with_options = served.signatures["serving_default"], served.signatures["inc_with_options"]
    x, y = mnist_test[0][:40], mnist_test[1][:40]
    # hard images: digits blended 50/50 with a digit of another class
    x = np.stack([0.5 * x[i] + 0.5 * x[next(k for k in range(i + 1, 40) if y[k] != y[i])] for i in range(10)])
    x = x.astype(np.float32)
    first = serve(images=tf.constant(x))
    eta = float(np.median(first["reconstruction_error"].numpy()))

    def call(batch, fn=with_options):
        r = fn(images=tf.constant(batch), steps=tf.constant(STEPS), eta=tf.constant(eta), seed=tf.constant(0))
        return {k: r[k].numpy() for k in ("classes", "rejected", "reconstruction", "probabilities")}

    def same(a, b, what):
        np.testing.assert_array_equal(a["classes"], b["classes"], err_msg=what)
        np.testing.assert_array_equal(a["rejected"], b["rejected"], err_msg=what)
        np.testing.assert_allclose(a["reconstruction"], b["reconstruction"], atol=1e-4, err_msg=what)
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-4, err_msg=what)

    ref = call(x)
    assert 0 < ref["rejected"].sum() < len(x)
    np.testing.assert_array_equal(ref["classes"], first["classes"].numpy())   # both signatures agree
    rng = np.random.default_rng(1)
    for k in range(3):
        perm = rng.permutation(len(x))
        out = call(x[perm])
        same({key: v[np.argsort(perm)] for key, v in out.items()}, ref, f"shuffled order {k}")
    singles = [call(x[i:i + 1]) for i in range(len(x))]
    same({key: np.concatenate([s[key] for s in singles]) for key in ref}, ref, "batch of one")
    dup = call(np.concatenate([x[:4], x[:4]]))
    same({key: v[:4] for key, v in dup.items()}, {key: v[4:] for key, v in dup.items()}, "two copies in one batch")
