"""Invert-and-Classify (paper Alg. 1): classify the projection of x onto range(G).

:class:`InvertAndClassify` wraps a generator and a classifier into a defended
classifier: probabilities of ``C(G(z*))`` with a reject flag for
``||G(z*) − x|| ≥ η`` (paper step 2). It owns its adaptive-attack gradient:
:meth:`InvertAndClassify.bpda_logits` is the classifier on the projection with an
identity backward pass through it (BPDA, Athalye et al. 2018). Its input bounds
and image shape come from the generator, and every entry point checks its input
against them (:mod:`tf_inc.bounds`).

Determinism. By default (``randomness="deterministic"``) INC is a *function* of
its input: the restart codes of an image are stateless draws keyed by
``(seed, fingerprint of the image's bytes, restart index)``
(``InversionConfig.seeding="content"``), so an image gets the same z*, the same
reconstruction, the same rejection flag and the same label in any batch, at any
position, in a batch of any size, twice in one batch, and in the exported
SavedModel. ``randomness="per_call"`` is the explicit opt-in to a randomised
defence: every call (``predict``, ``invert``, and each execution of the BPDA /
logits graphs) advances a call counter that is mixed into the seed, so
re-querying an image draws fresh restarts. Within one call the draws are still
content-keyed. Evaluate a ``per_call`` INC with EOT and say so; the robustness
table records the mode it attacked (``mode/<defence>``).
"""
from __future__ import annotations

import math
from typing import Dict, Optional

import numpy as np
import tensorflow as tf

from tf_inc.errors import InputError
from tf_inc.manifold.inversion import InversionConfig, InversionResult, Projector

#: the two modes of :class:`InvertAndClassify`; ``deterministic`` is the default and the deployed one
RANDOMNESS_MODES = ("deterministic", "per_call")


class InvertAndClassify:
    """The INC defence: ``C(G(z*(x)))``, rejecting x when ``||G(z*) − x|| ≥ η``.

    Args:
      generator: a :class:`tf_inc.models.Generator` (or any Keras model z -> image).
      classifier: Keras model image -> logits.
      config: projection hyper-parameters.
      eta: rejection threshold on the ℓ2 reconstruction error (``inf``: never reject).
      seed: seed of the random restarts. With ``randomness="deterministic"`` (default) and
        content seeding (``InversionConfig.seeding``, default) the output for an image depends
        only on the image, the seed, the models and the config: not on its batch, its position
        or the batch size.
      bounds: input pixel range; default: the generator's (``generator.bounds``).
      randomness: ``"deterministic"`` (default) or ``"per_call"`` — fresh restarts on every call
        (a randomised defence; attack it with EOT). See the module docstring.

    ``inc(x)`` returns class probabilities (numpy); :meth:`predict` returns
    probabilities, labels, the reject flag and the :class:`InversionResult`.
    """

    def __init__(self, generator, classifier, config: InversionConfig = InversionConfig(),
                 eta: float = math.inf, seed: int = 0, encoder=None, bounds=None,
                 randomness: str = "deterministic"):
        self.generator, self.classifier = generator, classifier
        self.config, self.eta, self.seed = config, float(eta), seed
        if math.isnan(self.eta) or self.eta <= 0:
            raise InputError(f"eta must be > 0 (inf: never reject), got {eta}")
        if randomness not in RANDOMNESS_MODES:
            raise InputError(f"randomness must be one of {', '.join(RANDOMNESS_MODES)}, got {randomness!r}")
        self.randomness = randomness
        # per_call: a counter mixed into the seed; a variable, so compiled BPDA graphs advance it too
        self._calls = tf.Variable(0, dtype=tf.int64, trainable=False) if randomness == "per_call" else None
        self.projector = Projector(generator, config, encoder=encoder, bounds=bounds)
        self.bounds = self.projector.bounds
        self._eot_projectors: Dict[str, Projector] = {}     # the attacker's projectors, per config
        self.image_shape = self.projector.image_shape
        self._classify = tf.function(lambda x: tf.nn.softmax(classifier(x, training=False)),
                                     reduce_retracing=True)

    def attack_view(self, seed: int, config: InversionConfig = None) -> "InvertAndClassify":
        """A copy with another restart seed (and optionally a cheaper projection) for an
        adaptive attacker: EOT averages several such draws, each with its BPDA gradient."""
        return InvertAndClassify(self.generator, self.classifier, config or self.config, eta=self.eta,
                                 seed=seed, encoder=self.projector.encoder, bounds=self.bounds,
                                 randomness=self.randomness)

    @property
    def mode(self) -> str:
        """What an evaluation attacked, in words (recorded in the robustness table)."""
        if self.randomness == "per_call":
            return "per_call: fresh content-keyed restarts on every call (randomised defence)"
        return f"deterministic: restarts keyed by ({self.config.seeding} of the image, seed {self.seed})"

    def _call_seed(self):
        """The seed of this call: ``self.seed``, or (``per_call``) the seed mixed with a fresh count."""
        if self._calls is None:
            return self.seed
        return tf.cast(self.seed, tf.int64) * 1_000_033 + self._calls.assign_add(1)

    def invert(self, x, progress: bool = False, run_dir=None, chunk: Optional[int] = None,
               strategy=None) -> InversionResult:
        """The projections of ``x``. ``run_dir``: resumable in chunks of ``chunk`` images — each
        finished chunk is saved atomically and a rerun after a kill projects only the unfinished
        ones (:meth:`tf_inc.manifold.inversion.Projector.__call__`); same result as without.
        ``strategy``: shard the images over a ``tf.distribute`` strategy's replicas (same rows)."""
        if self._calls is not None and run_dir is not None:
            raise InputError("run_dir: a randomness='per_call' INC draws new restarts on every call, so a "
                             "resumed projection would mix two draws; resume a deterministic INC instead")
        seed = self._call_seed()
        return self.projector(x, seed=seed if isinstance(seed, int) else int(seed), progress=progress,
                              run_dir=run_dir, chunk=chunk, strategy=strategy)

    def predict(self, x, progress: bool = False, run_dir=None, chunk: Optional[int] = None,
                strategy=None) -> Dict[str, np.ndarray]:
        """Probabilities, labels, reject flags and the :class:`InversionResult` of ``x``
        (``run_dir`` / ``chunk``: a resumable projection; ``strategy``: sharded; see :meth:`invert`)."""
        res = self.invert(x, progress=progress, run_dir=run_dir, chunk=chunk, strategy=strategy)
        probs = self._classify(tf.convert_to_tensor(res.x_hat)).numpy()
        return {
            "probabilities": probs,
            "label": probs.argmax(axis=1),
            "rejected": res.rejected(self.eta),
            "result": res,
        }

    def __call__(self, x) -> np.ndarray:
        return self.predict(x)["probabilities"]

    # -------------------------------------------------------------- adaptive
    def project_bpda(self, x: tf.Tensor) -> tf.Tensor:
        """G(z*(x)) forward; identity backward (BPDA, Athalye et al. 2018)."""

        @tf.custom_gradient
        def _proj(xx):
            out = self.projector.project_tensors(xx, seed=self._call_seed())[1]

            def grad(dy, variables=None):
                # identity w.r.t. the input; the generator's weights get no gradient
                if variables:
                    return dy, [None] * len(variables)
                return dy

            return tf.stop_gradient(out), grad

        return _proj(tf.convert_to_tensor(x))

    def bpda_probabilities(self, x: tf.Tensor) -> tf.Tensor:
        """Differentiable (via BPDA) INC probabilities, usable inside ``GradientTape``."""
        return tf.nn.softmax(self.classifier(self.project_bpda(x), training=False))

    def bpda_logits(self, x: tf.Tensor) -> tf.Tensor:
        """``model_fn`` for the attacks: classifier logits on the BPDA projection."""
        return self.classifier(self.project_bpda(x), training=False)

    def logits(self, x: tf.Tensor) -> tf.Tensor:
        """Classifier logits on the (non-differentiable) projection G(z*(x))."""
        x_hat = tf.stop_gradient(self.projector.project_tensors(tf.convert_to_tensor(x), seed=self._call_seed())[1])
        return self.classifier(x_hat, training=False)

    def eot_projector(self, config: InversionConfig = None) -> Projector:
        """The attacker's projector (``config``, default the defence's own), built once per config."""
        config = config or self.config
        key = repr(config)                       # the config dataclass is mutable, hence unhashable
        if key not in self._eot_projectors:
            self._eot_projectors[key] = Projector(self.generator, config, encoder=self.projector.encoder,
                                                  bounds=self.bounds)
        return self._eot_projectors[key]

    def eot_bpda_log_probs(self, x: tf.Tensor, seeds, config: InversionConfig = None) -> tf.Tensor:
        """``mean_k log softmax C(G(z*_k(x)))`` over the attacker's draws ``k`` (one per seed in
        ``seeds``), with an identity backward pass through every projection (BPDA + EOT).

        The same numbers as averaging ``attack_view(seed_k, config).bpda_logits`` over k, but all
        K draws are projected in **one** batched loop (K·R·N rows instead of K loops of R·N), and
        with an encoder warm start the K draws share their restart 0 (the encoder's code is the same
        for every seed and the projection from it is deterministic), so it is optimised once.
        """
        proj = self.eot_projector(config)
        cfg = proj.config
        x = tf.convert_to_tensor(x)
        xs = tf.stop_gradient(x)       # the projection is off the tape: no loop intermediates kept for a gradient
        n = tf.shape(x)[0]
        seeds = [int(s) for s in seeds]
        K, R = len(seeds), cfg.restarts
        shared = bool(cfg.warm_start and proj.encoder is not None)
        starts = [proj.initial_latents(xs, s) for s in seeds]                 # each (R·N, k), restart-major
        own = [z[n:] if shared else z for z in starts]                         # rows private to draw k
        z0 = tf.concat(([starts[0][:n]] if shared else []) + own, axis=0)
        n_rows = tf.shape(z0)[0]
        x_rows = tf.tile(xs, tf.concat([[n_rows // n], tf.ones([len(x.shape) - 1], tf.int32)], axis=0))
        _, best_obj, _, _, x_best = proj.optimise_rows(x_rows, z0)
        img = tf.shape(x)[1:]
        own_r = R - 1 if shared else R
        obj_own = tf.reshape(best_obj[n if shared else 0:], [K, own_r, n])
        x_own = tf.reshape(x_best[n if shared else 0:], tf.concat([[K, own_r, n], img], axis=0))
        if shared:
            obj_own = tf.concat([tf.broadcast_to(best_obj[None, None, :n], [K, 1, n]), obj_own], axis=1)
            x_sh = tf.broadcast_to(x_best[None, None, :n], tf.concat([[K, 1, n], img], axis=0))
            x_own = tf.concat([x_sh, x_own], axis=1)
        choice = tf.argmin(obj_own, axis=1, output_type=tf.int32)             # (K, N) best restart per draw
        perm = tf.concat([[0, 2, 1], tf.range(3, 3 + tf.size(img))], axis=0)
        x_hat = tf.gather(tf.transpose(x_own, perm), choice, axis=2, batch_dims=2)   # (K, N, H, W, C)
        # BPDA: forward G(z*_k(x)), backward identity (the straight-through form of project_bpda)
        x_hat = x[None] + tf.stop_gradient(x_hat - x[None])
        logits = self.classifier(tf.reshape(x_hat, tf.concat([[K * n], img], axis=0)), training=False)
        log_p = tf.nn.log_softmax(tf.reshape(logits, [K, n, -1]))
        return tf.reduce_mean(log_p, axis=0)

    def naive_probabilities(self, x: tf.Tensor) -> tf.Tensor:
        """INC probabilities with the projection treated as what it is: no gradient path to x."""
        return tf.nn.softmax(self.logits(x))
