"""SavedModels for TF Serving: classifiers, generators, encoder and the whole INC defence.

Each model is written in the TF Serving layout ``<base>/<model_name>/<version>/`` and
contains only TensorFlow ops (no ``py_function``), no device placement, and a
documented ``serving_default`` signature:

* classifier  — in ``images`` (float32 [batch, H, W, C]);
  out ``probabilities``, ``classes`` (int64), ``logits``.
* generator   — in ``latent`` (float32 [batch, k]); out ``images``.
* encoder     — in ``images``; out ``latent`` (posterior mean).
* inc         — in ``images``; out ``probabilities``, ``classes``, ``reconstruction``
  (G(z*)), ``reconstruction_error`` (‖G(z*) − x‖₂), ``rejected`` (bool, error ≥ η),
  ``latent`` (z*). The inversion loop, restart selection, rejection and
  classification run in the one exported graph. A second signature
  ``inc_with_options`` also takes the scalars ``steps`` (int32), ``eta`` (float32)
  and ``seed`` (int32).

Inputs are checked in-graph (plain TF ops, so TF Serving runs the same checks) and bad
input is refused with an ``InvalidArgument`` error that names the problem, never a
silently normal answer:

* a wrong dtype (uint8, float64) is refused by the signature's ``TensorSpec`` itself;
* a wrong shape (no channel axis, wrong size): ``Shape of tensor images [...] is not
  compatible with expected shape [?, H, W, C]`` (an ``EnsureShape`` op, which also holds
  where the caller's runtime does not check the signature's shape);
* an empty batch: ``images: empty batch``;
* NaN/Inf: ``images contains NaN or Inf``; pixels outside the model's range:
  ``images must lie in [lo, hi]`` (the generator: ``latent contains NaN or Inf``);
* ``inc_with_options``: ``steps`` < 0 (``steps must be >= 0``) and ``eta`` < 0 or NaN
  (``eta must be >= 0``; ``inf`` = never reject, ``0`` = reject everything).

Command line::

    python -m tf_inc.serving --out exported            # MNIST models from the models dir
    python -m tf_inc.serving --out exported --dataset celeba
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Dict, Optional

import tensorflow as tf

from tf_inc.manifold.inversion import InversionConfig, Projector

FORBIDDEN_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def _check_batch(t, shape, name):
    """``t`` with its per-row shape and a non-empty batch checked at run time."""
    t = tf.ensure_shape(t, [None, *shape], name=name)
    nonempty = tf.debugging.assert_positive(tf.shape(t)[0], message=f"{name}: empty batch; send at least one row")
    with tf.control_dependencies([nonempty]):
        return tf.identity(t)


def _check_images(images, bounds, name="images", shape=None):
    lo, hi = bounds
    if shape is not None:
        images = _check_batch(images, shape, name)
    images = tf.debugging.check_numerics(images, f"{name} contains NaN or Inf")
    checks = [
        tf.debugging.assert_greater_equal(tf.reduce_min(images), tf.constant(lo - 1e-5, tf.float32),
                                          message=f"{name} must lie in [{lo}, {hi}]"),
        tf.debugging.assert_less_equal(tf.reduce_max(images), tf.constant(hi + 1e-5, tf.float32),
                                       message=f"{name} must lie in [{lo}, {hi}]"),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(images)


def _softmax_outputs(logits):
    return {
        "probabilities": tf.nn.softmax(logits),
        "classes": tf.argmax(logits, axis=1, output_type=tf.int64),
    }


class _Servable:
    """One servable: the Keras models whose variables it reads and its endpoint functions.

    Written with :class:`keras.export.ExportArchive`, which tracks every Keras 3
    variable so that the SavedModel restores under TF Serving's C++ (TF1-style)
    loader too, not only under ``tf.saved_model.load``.
    """

    def __init__(self, models):
        self.models = [m for m in models if m is not None]
        self.endpoints = {}

    def add(self, name, fn, signature):
        self.endpoints[name] = (fn, signature)
        return self

    def write(self, base: Path, name: str, version: int = 1) -> Path:
        import keras

        path = Path(base) / name / str(version)
        path.parent.mkdir(parents=True, exist_ok=True)
        archive = keras.export.ExportArchive()
        for m in self.models:
            archive.track(m)
        for i, (ep, (fn, sig)) in enumerate(self.endpoints.items()):
            archive.add_endpoint("serving_default" if i == 0 else ep, fn, input_signature=sig)
        archive.write_out(str(path), verbose=False)
        return path


def _images_spec(shape):
    return tf.TensorSpec([None, *shape], tf.float32, name="images")


def classifier_servable(classifier, image_shape, bounds) -> _Servable:
    def serve(images):
        logits = classifier(_check_images(images, bounds, shape=image_shape), training=False)
        return {**_softmax_outputs(logits), "logits": logits}

    return _Servable([classifier]).add("serve", serve, [_images_spec(image_shape)])


def generator_servable(generator) -> _Servable:
    k = int(getattr(generator, "latent_dim", 0) or generator.input_shape[-1])

    def serve(latent):
        latent = tf.debugging.check_numerics(_check_batch(latent, [k], "latent"), "latent contains NaN or Inf")
        return {"images": generator(latent, training=False)}

    return _Servable([generator]).add("serve", serve, [tf.TensorSpec([None, k], tf.float32, name="latent")])


def encoder_servable(encoder, image_shape, bounds) -> _Servable:
    def serve(images):
        out = encoder(_check_images(images, bounds, shape=image_shape), training=False)
        return {"latent": out[0] if isinstance(out, (list, tuple)) else out}

    return _Servable([encoder]).add("serve", serve, [_images_spec(image_shape)])


def inc_servable(generator, classifier, config: InversionConfig, eta: float = math.inf,
                 seed: int = 0) -> _Servable:
    """The complete Invert-and-Classify defence as one servable graph."""
    projector = Projector(generator, config)
    bounds = tuple(getattr(generator, "bounds", (0.0, 1.0)))
    shape = projector.image_shape

    def run(images, steps, eta_t, seed_t):
        images = _check_images(images, bounds, shape=shape)
        with tf.control_dependencies([
            tf.debugging.assert_non_negative(steps, message="steps must be >= 0"),
            # NaN >= 0 is false, so a NaN eta is refused too (it would silently never reject)
            tf.debugging.Assert(eta_t >= 0.0, ["eta must be >= 0 (inf: never reject), got", eta_t]),
        ]):
            steps, eta_t = tf.identity(steps), tf.identity(eta_t)
        z, x_hat, l2, *_ = projector.project_tensors(images, seed=seed_t, steps=steps)
        logits = classifier(x_hat, training=False)
        return {
            **_softmax_outputs(logits),
            "reconstruction": x_hat,
            "reconstruction_error": l2,
            "rejected": l2 >= eta_t,
            "latent": z,
        }

    def serve(images):
        return run(images, tf.constant(int(config.steps), tf.int32), tf.constant(float(eta), tf.float32),
                   tf.constant(int(seed), tf.int32))

    def serve_with_options(images, steps, eta, seed):
        return run(images, steps, eta, seed)

    return (
        _Servable([generator, classifier])
        .add("serve", serve, [_images_spec(shape)])
        .add("inc_with_options", serve_with_options, [
            _images_spec(shape),
            tf.TensorSpec([], tf.int32, name="steps"),
            tf.TensorSpec([], tf.float32, name="eta"),
            tf.TensorSpec([], tf.int32, name="seed"),
        ])
    )


def export_classifier(classifier, base, name, image_shape, bounds, version=1) -> Path:
    return classifier_servable(classifier, image_shape, bounds).write(base, name, version)


def export_generator(generator, base, name, version=1) -> Path:
    return generator_servable(generator).write(base, name, version)


def export_encoder(encoder, base, name, image_shape, bounds, version=1) -> Path:
    return encoder_servable(encoder, image_shape, bounds).write(base, name, version)


def export_inc(generator, classifier, base, name, config: InversionConfig, eta=math.inf, seed=0,
               version=1) -> Path:
    return inc_servable(generator, classifier, config, eta, seed).write(base, name, version)


def graph_ops(saved_model_dir: Path, with_function: bool = False):
    """Every (op type, device[, function name]) in a SavedModel: main graph and all functions.

    The main graph's own nodes are reported under the function name ``""``.
    """
    from tensorflow.core.protobuf import saved_model_pb2

    sm = saved_model_pb2.SavedModel()
    sm.ParseFromString((Path(saved_model_dir) / "saved_model.pb").read_bytes())
    ops = []
    for mg in sm.meta_graphs:
        ops += [(n.op, n.device, "") for n in mg.graph_def.node]
        for fn in mg.graph_def.library.function:
            ops += [(n.op, n.device, fn.signature.name) for n in fn.node_def]
    return ops if with_function else [(op, dev) for op, dev, _ in ops]


def is_checkpoint_function(name: str) -> bool:
    """tf.saved_model's own variable save/restore functions (always on the host CPU)."""
    return name == "" or "_save" in name or "_restore" in name or "saveable" in name.lower()


def export_all(dataset: str, out: Path, config: Optional[InversionConfig] = None,
               eta: float = math.inf, seed: int = 0, version: int = 1) -> Dict[str, Path]:
    """Export every model of ``dataset`` found (or trained) in the models dir."""
    from tf_inc.experiments import zoo
    from tf_inc.paths import model_path

    clf, G, _ = zoo.dataset_models(dataset)
    shape, bounds = tuple(G.image_shape), G.bounds
    config = config or InversionConfig.for_dataset(dataset)
    paths = {
        f"{dataset}_classifier": export_classifier(clf, out, f"{dataset}_classifier", shape, bounds, version),
        f"{dataset}_generator": export_generator(G, out, f"{dataset}_generator", version),
        f"{dataset}_inc": export_inc(G, clf, out, f"{dataset}_inc", config, eta, seed, version),
    }
    if dataset == "mnist":
        vae = zoo.mnist_vae()
        paths["mnist_encoder"] = export_encoder(vae.encoder, out, "mnist_encoder", shape, bounds, version)
    robust = model_path(f"{dataset}_classifier_robust.keras")
    if robust.exists():
        paths[f"{dataset}_classifier_robust"] = export_classifier(
            zoo.load(robust.name), out, f"{dataset}_classifier_robust", shape, bounds, version)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description="Export SavedModels for TF Serving")
    ap.add_argument("--dataset", default="mnist", choices=["mnist", "celeba"])
    ap.add_argument("--out", default="exported")
    ap.add_argument("--steps", type=int, default=None, help="inversion steps baked into serving_default")
    ap.add_argument("--restarts", type=int, default=None)
    ap.add_argument("--eta", type=float, default=math.inf, help="rejection threshold (default: never reject)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--version", type=int, default=1)
    args = ap.parse_args(argv)
    over = {k: v for k, v in (("steps", args.steps), ("restarts", args.restarts)) if v is not None}
    cfg = InversionConfig.for_dataset(args.dataset, **over)
    for name, path in export_all(args.dataset, Path(args.out), cfg, args.eta, args.seed, args.version).items():
        print(f"exported {name}: {Path(path).resolve()}")


if __name__ == "__main__":
    sys.exit(main())
