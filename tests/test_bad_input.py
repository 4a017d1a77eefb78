"""Issue 15 — bad input, everywhere.

One registry of public entry points (attacks, their model wrappers, the defences, the
detectors, the manifold searches, the data helpers, each script's command line and
each exported SavedModel signature) and one table of bad inputs (wrong rank / shape,
uint8 0–255, integer dtypes, out-of-range values, NaN, ±Inf, empty batches, bad labels).
Every (entry point × bad input) must end in one :class:`~tf_inc.errors.InputError` whose
message names the problem, raised *before* any model is called or traced: every tiny
model below starts with a :class:`Tripwire` layer that counts its Python calls (eager calls
and traces alike), and the count must not move on a refused input. The good-input cases
check what must work: float64 images are accepted and give the float32 answer, and a
batch of one image works.

The models are tiny and untrained: input checks do not depend on weights.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.bad_input_cases import IMAGE_CASES, LABEL_CASES, SHAPE, good_batch
from tf_inc import attacks
from tf_inc.bounds import attach_bounds
from tf_inc.errors import InputError

K = 4          # latent dimension of the tiny generator
CALLS = {"n": 0}


class Tripwire(keras.layers.Layer):
    """Identity layer that counts how often its ``call`` runs in Python (each eager call, each trace)."""

    def call(self, x):
        CALLS["n"] += 1
        return x


def _image_net(name, out_units, dropout=False, activation=None):
    inp = keras.Input(SHAPE)
    h = keras.layers.Flatten()(Tripwire()(inp))
    h = keras.layers.Dense(16, activation="relu")(h)
    if dropout:
        h = keras.layers.Dropout(0.5)(h)
    return keras.Model(inp, keras.layers.Dense(out_units, activation=activation)(h), name=name)


@pytest.fixture(scope="module")
def kit():
    from tf_inc.attacks.unrolled import UnrolledInversion
    from tf_inc.defences import (
        AutoencodeAndClassify,
        DIPConfig,
        DIPInvertAndClassify,
        InvertAndClassify,
    )
    from tf_inc.detectors import (
        EncoderReconstructionDetector,
        InversionReconstructionDetector,
        MCDropoutDetector,
        VAEKLDetector,
    )
    from tf_inc.manifold.inversion import InversionConfig
    from tf_inc.models.generator import Generator

    keras.utils.set_random_seed(0)
    clf = attach_bounds(_image_net("tiny_clf", 10, dropout=True), (0.0, 1.0))
    clf2 = attach_bounds(_image_net("tiny_clf2", 10), (0.0, 1.0))
    net = keras.Sequential([keras.Input((K,)), Tripwire(), keras.layers.Dense(28 * 28, activation="sigmoid"),
                            keras.layers.Reshape(SHAPE)], name="tiny_gen_net")
    gen = Generator(net, K, prior_std=1.0, bounds=(0.0, 1.0), name="tiny_gen")
    enc = _image_net("tiny_enc", K)
    inv = InversionConfig(steps=2, restarts=1, batch_size=8)
    inc = InvertAndClassify(gen, clf, inv, eta=5.0, seed=0)
    ae = AutoencodeAndClassify(clf, gen, enc, eta=5.0)
    from tf_inc.models.skip_net import SkipNetConfig

    tiny_net = SkipNetConfig.mnist(channels_down=(4,), channels_up=(4,), channels_skip=(2,), input_channels=2)
    dip = DIPInvertAndClassify(clf, DIPConfig(max_iterations=2, batch_size=4), net=tiny_net, seed=0)
    dets = {
        "encoder_recon": EncoderReconstructionDetector(ae, threshold=1.0),
        "inversion_recon": InversionReconstructionDetector(inc, threshold=1.0),
        "vae_kl": VAEKLDetector(clf, ae, threshold=0.1),
        "mc_dropout": MCDropoutDetector(clf, samples=2, threshold=0.01, attack_samples=2),
    }
    return SimpleNamespace(clf=clf, clf2=clf2, gen=gen, enc=enc, inv=inv, inc=inc, ae=ae, dip=dip, dets=dets,
                           unrolled=UnrolledInversion(gen, clf, steps=2))


# --------------------------------------------------------------------------- the registry
def _latent_attack(k, x, y):
    from tf_inc.attacks import LatentAttackConfig

    cfg = LatentAttackConfig(inversion_restarts=1, inversion_steps=2, steps=2, binary_search_steps=1)
    return attacks.latent_attack(k.gen, k.clf, x, y, [("2", 1.0)], cfg)["x_adv"]["l2_1.0"]


def _natural(k, x, y):
    from tf_inc.manifold import NaturalAdversaryConfig, natural_adversaries

    cfg = NaturalAdversaryConfig(samples=4, max_iterations=2, stop=1, step=0.5, initial_range=1.0)
    return natural_adversaries(k.gen, k.clf, x, y, encoder=k.enc, config=cfg).x_adv


def _latent_space_attack(k, x, y):
    from tf_inc.manifold import MinMaxConfig, latent_space_attack

    return latent_space_attack(k.gen, k.clf, x, MinMaxConfig(iterations=2, log_every=1), k.inv).x2


def _commonly_correct(k, x, y):
    return attacks.commonly_correct({"a": k.clf, "b": k.clf2}, x, y)


def _transfer_matrix(k, x, y):
    from functools import partial

    m = attacks.transfer_matrix({"a": k.clf}, {"b": k.clf2}, x, y, partial(attacks.fgsm, eps=0.1))
    return np.array([m["a"]["b"]])


def _jacobian_augment(k, x, y):
    return attacks.jacobian_augment(k.clf, x, y, 0.1, (0.0, 1.0))


#: name -> (f(kit, x, y) -> numpy answer, takes labels, deterministic)
ENTRY_POINTS = {
    # attacks on a plain classifier
    "fgsm": (lambda k, x, y: attacks.fgsm(k.clf, x, y, 0.1), True, True),
    "fgsm_multi_eps": (lambda k, x, y: attacks.fgsm_multi_eps(k.clf, x, y, [0.1, 0.2])[1], True, True),
    "bim": (lambda k, x, y: attacks.bim(k.clf, x, y, 0.1, nb_iter=2), True, True),
    "pgd_linf": (lambda k, x, y: attacks.pgd(k.clf, x, y, 0.1, nb_iter=2, seed=0), True, True),
    "pgd_l2": (lambda k, x, y: attacks.pgd(k.clf, x, y, 1.0, nb_iter=2, norm="2", seed=0), True, True),
    "cw_l2": (lambda k, x, y: attacks.cw_l2(k.clf, x, y, binary_search_steps=1, max_iterations=2), True, True),
    "cw_linf": (lambda k, x, y: attacks.cw_linf(k.clf, x, y, max_iterations=2, outer_steps=1), True, True),
    "cw_l0": (lambda k, x, y: attacks.cw_l0(k.clf, x, y, max_iterations=2, outer_steps=1), True, True),
    "targeted_ifgsm": (lambda k, x, y: attacks.targeted_ifgsm(k.clf, x, y, nb_iter=2), True, True),
    "jsma": (lambda k, x, y: attacks.jsma(k.clf, x, y, gamma=0.01), True, True),
    "pixel_attack": (lambda k, x, y: attacks.pixel_attack(k.clf, x, y, popsize=8, maxiter=2).x_adv, True, True),
    "jacobian_augment": (_jacobian_augment, True, True),
    "commonly_correct": (_commonly_correct, True, True),
    "transfer_matrix": (_transfer_matrix, True, True),
    # attacks through the model wrappers (EOT, Ensemble, C∘G∘E, unrolled inversion) and defences
    "fgsm_on_EOT": (lambda k, x, y: attacks.fgsm(attacks.EOT([k.clf, k.clf2]), x, y, 0.1), True, True),
    "fgsm_on_Ensemble": (lambda k, x, y: attacks.fgsm(attacks.Ensemble([k.clf, k.clf2]), x, y, 0.1), True, True),
    "fgsm_on_autoencode": (lambda k, x, y: attacks.fgsm(k.ae, x, y, 0.1), True, True),
    "fgsm_on_unrolled": (lambda k, x, y: attacks.fgsm(k.unrolled, x, y, 0.1), True, True),
    "bpda_eot_pgd_inc": (lambda k, x, y: attacks.bpda_eot_pgd(k.inc, x, y, 0.1, nb_iter=1, restarts=1,
                                                              eot_samples=1), True, True),
    "detector_aware_pgd": (lambda k, x, y: attacks.detector_aware_pgd(k.dets["encoder_recon"], x, y, 0.1,
                                                                      lams=(1.0,), nb_iter=2).x_adv, True, True),
    "latent_attack": (_latent_attack, True, True),
    # defences
    "InvertAndClassify.predict": (lambda k, x, y: k.inc.predict(x)["probabilities"], False, True),
    "DIPInvertAndClassify.predict": (lambda k, x, y: k.dip.predict(x)["probabilities"], False, True),
    "AutoencodeAndClassify.predict": (lambda k, x, y: k.ae.predict(x)["probabilities"], False, True),
    # manifold
    "project": (lambda k, x, y: __import__("tf_inc.manifold", fromlist=["project"]).project(k.gen, x, k.inv).x_hat,
                False, True),
    "Projector": (lambda k, x, y: k.inc.projector(x).z, False, True),
    "natural_adversaries": (_natural, True, True),
    "latent_space_attack": (_latent_space_attack, False, True),
}
for _name in ("encoder_recon", "inversion_recon", "vae_kl", "mc_dropout"):
    ENTRY_POINTS[f"{_name}.score"] = (lambda k, x, y, _n=_name: k.dets[_n].score(x), False, _name != "mc_dropout")
    ENTRY_POINTS[f"{_name}.detect"] = (lambda k, x, y, _n=_name: k.dets[_n].detect(x), False, _name != "mc_dropout")


def _run(kit, name, x, y):
    out = ENTRY_POINTS[name][0](kit, x, y)
    return np.asarray(out)


def _refused(kit, name, x, y, match):
    """``name`` refuses (x, y) with an InputError matching ``match`` before calling any model."""
    before = CALLS["n"]
    with pytest.raises(InputError, match=match):
        _run(kit, name, x, y)
    assert CALLS["n"] == before, f"{name}: a model was called or traced before the input was refused"


@pytest.mark.parametrize("case", sorted(IMAGE_CASES))
@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_bad_images_are_refused_before_tracing(kit, entry, case):
    x, y = good_batch()
    bad, match = IMAGE_CASES[case]
    _refused(kit, entry, *bad(x, y), match)


LABELLED = sorted(n for n, (_, labels, _) in ENTRY_POINTS.items() if labels)


@pytest.mark.parametrize("case", sorted(LABEL_CASES))
@pytest.mark.parametrize("entry", LABELLED)
def test_bad_labels_are_refused_before_tracing(kit, entry, case):
    x, y = good_batch()
    bad, match = LABEL_CASES[case]
    _refused(kit, entry, *bad(x, y), match)


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_float64_is_accepted_and_a_batch_of_one_works(kit, entry):
    x, y = good_batch()
    a32 = _run(kit, entry, x, y)
    a64 = _run(kit, entry, x.astype(np.float64), y)
    assert a64.shape == a32.shape
    if ENTRY_POINTS[entry][2]:                        # deterministic: the very same answer
        np.testing.assert_allclose(a64, a32, rtol=1e-6, atol=1e-6)
    one = _run(kit, entry, x[:1], y[:1])
    if a32.ndim and a32.shape[0] == len(x):           # per-image outputs: one row for one image
        assert one.shape == (1,) + a32.shape[1:]
    assert np.all(np.isfinite(one.astype(np.float64)))


@pytest.mark.parametrize("case", sorted({**IMAGE_CASES, **LABEL_CASES}))
def test_train_substitute_refuses_bad_data_before_building_a_model(case):
    x, y = good_batch()
    bad, match = {**IMAGE_CASES, **LABEL_CASES}[case]
    with pytest.raises(InputError, match=match):
        attacks.train_substitute("mnist", *bad(x, y), epochs=1, seed=0)


# --------------------------------------------------------------------------- non-batched helpers
def test_min_max_attack_refuses_bad_starting_latents(kit):
    from tf_inc.manifold import MinMaxAttack, MinMaxConfig

    att = MinMaxAttack(kit.gen, kit.clf, MinMaxConfig(iterations=1, log_every=1))
    before = CALLS["n"]
    for z, match in ((np.full((2, K), np.nan), "finite latents"), (np.zeros((2, K + 1)), r"shape \(2, 4\)")):
        with pytest.raises(InputError, match=match):
            att(2, z_init=z)
    with pytest.raises(InputError, match="n_pairs"):
        att(0)
    assert CALLS["n"] == before


@pytest.mark.parametrize("case, image, match", [
    ("grey_2d", np.zeros((40, 50), np.uint8), "RGB"),
    ("batch_of_images", np.zeros((2, 40, 50, 3), np.uint8), "RGB"),
    ("rgba", np.zeros((40, 50, 4), np.uint8), "RGB"),
    ("empty", np.zeros((0, 50, 3), np.uint8), "empty"),
    ("nan", np.full((40, 50, 3), np.nan), "NaN or infinite"),
    ("inf", np.full((40, 50, 3), np.inf), "NaN or infinite"),
    ("negative", np.full((40, 50, 3), -3.0), r"0.*255"),
    ("above_255", np.full((40, 50, 3), 300.0), r"0.*255"),
    ("already_scaled_0_1", np.full((40, 50, 3), 0.5, np.float32), r"already scaled"),
    ("strings", np.full((40, 50, 3), "a"), "numeric"),
])
def test_preprocess_imagenet_refuses_bad_images(case, image, match):
    from tf_inc.data.imagenet import preprocess_imagenet

    with pytest.raises(InputError, match=match):
        preprocess_imagenet(image, size=32, resize_short=36)


def test_preprocess_imagenet_accepts_uint8_and_float_0_255_alike():
    from tf_inc.data.imagenet import preprocess_imagenet

    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    ref = preprocess_imagenet(img, size=32, resize_short=36)
    for dt in (np.float32, np.float64, np.int64):
        np.testing.assert_allclose(preprocess_imagenet(img.astype(dt), size=32, resize_short=36), ref, atol=1e-6)
    assert preprocess_imagenet(np.zeros((40, 50, 3), np.uint8), size=32, resize_short=36).max() == 0.0


# --------------------------------------------------------------------------- SavedModel signatures
@pytest.fixture(scope="module")
def served(kit, tmp_path_factory):
    from tf_inc.serving.export import (
        export_classifier,
        export_encoder,
        export_generator,
        export_inc,
    )

    base = tmp_path_factory.mktemp("bad_input_serving")
    paths = {
        "classifier": export_classifier(kit.clf2, base, "clf", SHAPE, (0.0, 1.0)),
        "generator": export_generator(kit.gen, base, "gen"),
        "encoder": export_encoder(kit.enc, base, "enc", SHAPE, (0.0, 1.0)),
        "inc": export_inc(kit.gen, kit.clf2, base, "inc", kit.inv, eta=5.0, seed=0),
    }
    loaded = {k: tf.saved_model.load(str(p)) for k, p in paths.items()}
    sigs = {k: m.signatures["serving_default"] for k, m in loaded.items()}
    opts = loaded["inc"].signatures["inc_with_options"]
    sigs["inc_with_options"] = lambda images: opts(images=images, steps=tf.constant(2), eta=tf.constant(5.0),
                                                   seed=tf.constant(0))
    sigs["_inc_options_raw"] = opts
    return sigs


IMAGE_SIGNATURES = ("classifier", "encoder", "inc", "inc_with_options")
# what a signature's TensorSpec refuses: a dtype or shape that does not match it
SPEC_CASES = {
    "float64": lambda x: tf.constant(x, tf.float64),
    "uint8_0_255": lambda x: tf.constant((x * 255).astype(np.uint8)),
    "rank3_no_channel_axis": lambda x: tf.constant(x[..., 0]),
    "wrong_image_size_14x14": lambda x: tf.constant(x[:, :14, :14]),
}
# what the graph refuses (documented in tf_inc/serving/export.py): InvalidArgument naming the problem
GRAPH_CASES = {
    "nan": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.nan, x), "contains NaN or Inf"),
    "plus_inf": (lambda x: np.where(np.arange(x.size).reshape(x.shape) == 5, np.inf, x), "contains NaN or Inf"),
    "float_0_255": (lambda x: x * 255.0, r"must lie in \[0.0, 1.0\]"),
    "float_minus1_1": (lambda x: x * 2.0 - 1.0, r"must lie in \[0.0, 1.0\]"),
    "empty_batch": (lambda x: x[:0], "empty batch"),
}


def _spec_refusal(fn, arg):
    """A signature called with a tensor its TensorSpec does not accept: a clear TypeError/ValueError
    that names the spec (or the offending dtype/shape), before anything runs."""
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)) as e:
        fn(arg)
    msg = str(e.value)
    assert re.search(r"TensorSpec|dtype|shape|float32|incompatible|Expected", msg, re.I), msg[:500]


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
@pytest.mark.parametrize("sig", IMAGE_SIGNATURES)
def test_signature_spec_refuses_wrong_dtype_and_shape(served, sig, case):
    x, _ = good_batch()
    _spec_refusal(lambda t: served[sig](images=t) if sig != "inc_with_options" else served[sig](t),
                  SPEC_CASES[case](x))


@pytest.mark.parametrize("case", sorted(GRAPH_CASES))
@pytest.mark.parametrize("sig", IMAGE_SIGNATURES)
def test_signature_graph_refuses_nan_range_and_empty(served, sig, case):
    x, _ = good_batch()
    bad, match = GRAPH_CASES[case]
    fn = served[sig]
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        out = fn(images=tf.constant(bad(x).astype(np.float32))) if sig != "inc_with_options" else \
            fn(tf.constant(bad(x).astype(np.float32)))
        {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("sig", IMAGE_SIGNATURES)
def test_signature_batch_of_one_works(served, kit, sig):
    x, _ = good_batch()
    fn = served[sig]
    call = (lambda t: fn(images=t)) if sig != "inc_with_options" else fn
    full, one = call(tf.constant(x)), call(tf.constant(x[:1]))
    for k, v in one.items():
        assert v.shape[0] == 1 and np.all(np.isfinite(v.numpy().astype(np.float64))), k
    if sig == "classifier":
        np.testing.assert_allclose(one["probabilities"].numpy(), full["probabilities"].numpy()[:1], atol=1e-6)
        np.testing.assert_allclose(full["probabilities"].numpy(),
                                   tf.nn.softmax(kit.clf2(x)).numpy(), atol=1e-5)


@pytest.mark.parametrize("case, make, match", [
    ("nan", lambda z: np.where(np.arange(z.size).reshape(z.shape) == 1, np.nan, z), "latent contains NaN or Inf"),
    ("inf", lambda z: np.where(np.arange(z.size).reshape(z.shape) == 1, np.inf, z), "latent contains NaN or Inf"),
    ("empty_batch", lambda z: z[:0], "empty batch"),
])
def test_generator_signature_refuses_bad_latents(served, case, make, match):
    z = np.random.default_rng(0).normal(size=(3, K)).astype(np.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        served["generator"](latent=tf.constant(make(z)))["images"].numpy()
    assert served["generator"](latent=tf.constant(z[:1]))["images"].shape == (1, *SHAPE)
    _spec_refusal(lambda t: served["generator"](latent=t), tf.constant(z, tf.float64))
    _spec_refusal(lambda t: served["generator"](latent=t), tf.constant(z[:, :K - 1]))


@pytest.mark.parametrize("kw, match", [
    (dict(steps=-1), "steps must be >= 0"),
    (dict(eta=float("nan")), "eta must be >= 0"),
    (dict(eta=-1.0), "eta must be >= 0"),
])
def test_inc_options_refuse_bad_scalars(served, kw, match):
    x, _ = good_batch()
    args = dict(images=tf.constant(x), steps=tf.constant(2), eta=tf.constant(5.0), seed=tf.constant(0))
    args.update({k: tf.constant(v, args[k].dtype) for k, v in kw.items()})
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(match)):
        served["_inc_options_raw"](**args)["classes"].numpy()
    # eta = inf stays valid: it means never reject (eta = 0, reject everything: tests/serving/test_export.py)
    r = served["_inc_options_raw"](images=tf.constant(x), steps=tf.constant(2), eta=tf.constant(math.inf),
                                   seed=tf.constant(0))
    assert not r["rejected"].numpy().any()


# --------------------------------------------------------------------------- script command lines
def _script_configs():
    import importlib

    out = {}
    for p in sorted((Path(__file__).resolve().parent.parent / "scripts").glob("*.py")):
        m = re.search(r"from (tf_inc\.experiments\.\w+) import (\w+Config), run", p.read_text())
        assert m, f"{p.name}: no `from tf_inc.experiments.X import XConfig, run`"
        out[p.stem] = getattr(importlib.import_module(m.group(1)), m.group(2))
    return out


SCRIPTS = _script_configs()
_BUDGET_FIELD = re.compile(r"(^|_)eps($|_iter$|_max$|_encoder$|_inc$)|_msd$")


def _script_flag_cases():
    import dataclasses

    cases = []
    for script, cls in SCRIPTS.items():
        fields = {f.name: f for f in dataclasses.fields(cls)}
        cases.append(pytest.param(script, "n", "0", id=f"{script}--n=0"))
        for name in sorted(fields):
            if _BUDGET_FIELD.search(name):
                cases.append(pytest.param(script, name, "-0.1", id=f"{script}--{name}=-0.1"))
                cases.append(pytest.param(script, name, "nan", id=f"{script}--{name}=nan"))
    return cases


@pytest.mark.parametrize("script, field_name, value", _script_flag_cases())
def test_script_refuses_bad_counts_and_budgets_with_one_line(script, field_name, value, capsys):
    """``scripts/<script>.py --<field> <value>`` stops in argument parsing: exit 2, one ``error:`` line
    naming the flag (in-process: the same :func:`tf_inc.cli.parse_config` the script runs first)."""
    from tf_inc.cli import parse_config

    flag = "--" + field_name.replace("_", "-")
    with pytest.raises(SystemExit) as e:
        parse_config(SCRIPTS[script], [flag, value])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err, "nothing on stderr"
    assert "error:" in err[-1] and (flag in err[-1] or f"{field_name}:" in err[-1]), err[-1]
    assert not any("Traceback" in line for line in err)
