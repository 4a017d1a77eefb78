"""Standard ℓ∞ adversarial training: the side-by-side baseline of the MNIST robustness table.

Two training attacks, both run in-graph inside :meth:`AdversarialTrainer.train_step`
with the shared helpers of :mod:`tf_inc.attacks.utils`:

* ``fgsm_rs`` (default): Wong, Rice & Kolter (2020), "Fast is better than free":
  one FGSM step of size α = 1.25·ε from a uniform random start in the ε-ball
  (MNIST: ε = 0.3, α = 0.375, Adam with a cyclic learning rate, batch 100);
* ``pgd``: Madry et al. (2018): PGD-k from a random start, step 2.5·ε/k.

FGSM-based training can *catastrophically overfit*: within an epoch the model
becomes robust to the single-step attack (validation FGSM accuracy stays high)
while PGD accuracy collapses to ~0. :meth:`AdversarialTrainer.test_step` therefore
reports clean, FGSM and PGD-20 accuracy on the validation split every epoch, and
:func:`train_adversarial_classifier` keeps the epoch with the best validation PGD
accuracy (early stopping with best-weight restore in
:func:`tf_inc.training.loop.fit_resumable`), never looking at the test split.

Data: the validation split is the **last** ``n_val`` (5000) images of the MNIST
train split, fixed; training uses images from the start of the train split only
(the first 55 000 by default), so the two are disjoint and the test split is
left for the evaluation.

``python -m tf_inc.training adv-classifier [--method pgd --pgd-steps 40 ...]``
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tf_inc.attacks.pgd import pgd_iterations
from tf_inc.attacks.utils import random_init
from tf_inc.bounds import attach_bounds, bounds_of, check_count
from tf_inc.data.mnist import VAL_SIZE, split_indices, train_val_split  # noqa: F401  (re-exported)
from tf_inc.errors import InputError
from tf_inc.training.distribute import STRATEGIES, check_strategy, replica_index, replica_scaled

METHODS = ("fgsm_rs", "pgd")
LR_SCHEDULES = ("cyclic", "cosine", "constant")
#: a validation PGD accuracy this far below the best so far, while FGSM accuracy stays this far
#: above PGD accuracy, is reported as catastrophic overfitting (Wong et al. 2020)
CO_DROP, CO_GAP = 0.2, 0.2
#: validation batch size (inference only)
VAL_BATCH = 500
#: what test_step reports (``val_<key>`` under fit)
VAL_KEYS = ("acc", "fgsm_acc", "pgd_acc")


@dataclass
class AdversarialTrainingConfig:
    """ℓ∞ adversarial training of the deep-MNIST classifier (Wong et al. 2020 FGSM-RS, or Madry PGD).

    Defaults are Wong et al.'s MNIST settings (ε = 0.3, α = 1.25·ε = 0.375, batch 100, Adam
    with a cyclic learning rate peaking at 5e-3 two fifths into training) except the number
    of epochs: Wong et al. train 10 epochs of a smaller net; the default here (4) keeps a
    from-scratch run of the deep-MNIST CNN to ~17 minutes on 2 CPU cores (an FGSM-RS epoch of
    55 000 images costs about twice a clean one, ~220 s, plus ~30 s of validation attacks).
    """

    method: str = field(default="fgsm_rs", metadata={
        "help": "training attack: fgsm_rs (Wong et al. 2020, FGSM from a random start) or pgd (Madry et al.)",
        "choices": list(METHODS)})
    epsilon: float = field(default=0.3, metadata={"help": "ℓ∞ budget of the training attack (MNIST: 0.3)"})
    alpha_factor: float = field(default=1.25, metadata={
        "help": "fgsm_rs step α as a multiple of ε (Wong et al.: 1.25, i.e. α = 0.375 at ε = 0.3)"})
    pgd_steps: int = field(default=40, metadata={
        "help": "pgd: attack steps k (Madry et al. MNIST: 40), step 2.5·ε/k, random start; "
                "each training step then costs ~k/2 times an fgsm_rs step"})
    epochs: int = field(default=4, metadata={"help": "training epochs (Wong et al.: 10; 4 ≈ 17 min on 2 CPU cores)"})
    batch_size: int = field(default=100, metadata={"help": "mini-batch size"})
    learning_rate: float = field(default=5e-3, metadata={"help": "peak Adam learning rate (Wong et al. MNIST: 5e-3)"})
    lr_schedule: str = field(default="cyclic", metadata={
        "help": "cyclic (Wong et al.: linear 0 → peak at 2/5 of training → 0), cosine (decay to 0) or constant",
        "choices": list(LR_SCHEDULES)})
    n_train: int = field(default=0, metadata={
        "help": "training images, taken from the start of the train split (0 = all 60000 − n_val)"})
    n_val: int = field(default=5000, metadata={
        "help": "validation images: the LAST n_val of the train split (never trained on)"})
    n_val_attack: int = field(default=1000, metadata={
        "help": "validation images attacked every epoch (FGSM and PGD; the first ones of the validation "
                "split); clean accuracy uses all n_val"})
    val_pgd_steps: int = field(default=20, metadata={
        "help": "PGD steps of the validation attack (step 2.5·ε/k, random start)"})
    patience: int = field(default=3, metadata={
        "help": "stop after this many epochs without a better validation PGD accuracy "
                "(the best epoch's weights are kept either way)"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    run_dir: str = field(default="runs/mnist_classifier_advtrain", metadata={
        "help": "checkpoints, metrics.jsonl, TensorBoard (a rerun resumes from here)"})
    out: str = field(default="", metadata={"help": "output .keras (default: <models dir>/mnist_classifier_advtrain.keras)"})
    strategy: str = field(default="default", metadata={
        "help": "tf.distribute strategy (tf_inc.training.distribute): default, mirrored or multiworker "
                "(TF_CONFIG); batch_size is the global batch", "choices": list(STRATEGIES)})

    def __post_init__(self):
        self.check()

    def check(self) -> "AdversarialTrainingConfig":
        """Raise :class:`InputError` on a value that cannot train; return ``self``."""
        from tf_inc.data.mnist import N_TRAIN

        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise InputError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        for name in ("epsilon", "alpha_factor", "learning_rate"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise InputError(f"{name}: expected a finite number > 0, got {v!r}")
        if self.epsilon > 1.0:
            raise InputError(f"epsilon: MNIST pixels lie in [0, 1], so ε must be <= 1, got {self.epsilon}")
        for name in ("pgd_steps", "epochs", "batch_size", "n_val", "n_val_attack", "val_pgd_steps", "patience"):
            check_count(getattr(self, name), name, 1)
        check_count(self.n_train, "n_train", 0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)):
            raise InputError(f"seed: expected an integer, got {self.seed!r}")
        if self.n_val >= N_TRAIN:
            raise InputError(f"n_val: must leave training images, got {self.n_val} of {N_TRAIN}")
        if self.n_train > N_TRAIN - self.n_val:
            raise InputError(f"n_train: at most {N_TRAIN - self.n_val} images precede the validation split "
                             f"(n_val={self.n_val}), got {self.n_train}")
        if self.n_val_attack > self.n_val:
            raise InputError(f"n_val_attack: at most n_val={self.n_val}, got {self.n_val_attack}")
        check_strategy(self.strategy)
        return self

    @property
    def alpha(self) -> float:
        """The fgsm_rs step size α."""
        return self.alpha_factor * self.epsilon


# --------------------------------------------------------------------------- data
# --------------------------------------------------------------------------- in-graph attacks
def linf_attack(model_fn, x, y, eps: float, step: float, steps: int, bounds: Tuple[float, float],
                seed=None, rand_init: bool = True):
    """``steps`` signed-gradient steps of size ``step`` projected on the ℓ∞ ``eps``-ball and ``bounds``.

    Graph-friendly (no input checks; use it inside a ``tf.function``): ``steps=1, step=eps,
    rand_init=False`` is FGSM; ``steps=1, step=1.25·eps`` with a random start is FGSM-RS
    (Wong et al. 2020); ``steps=k, step=2.5·eps/k`` with a random start is PGD-k (Madry et al.).
    ``seed`` is a stateless seed pair for the uniform start.
    """
    lo, hi = bounds
    xa = x
    if rand_init:
        xa = tf.clip_by_value(x + random_init(x, eps, "inf", seed), lo, hi)
    return tf.stop_gradient(pgd_iterations(model_fn, x, y, xa, eps, step, steps, "inf", (lo, hi)))


def _correct(logits, y):
    return tf.cast(tf.equal(tf.argmax(logits, 1), y), tf.float32)


# --------------------------------------------------------------------------- trainer
class AdversarialTrainer(keras.Model):
    """Wraps a classifier (logits) and trains it on adversarial examples of the current weights.

    ``train_step``: attack the batch (``fgsm_rs`` or ``pgd``, dropout off), then one optimizer
    step on the cross-entropy of the adversarial batch (dropout on). Logs ``loss`` and
    ``adv_acc`` (training accuracy on the adversarial examples).

    ``test_step`` takes ``(x, y, attack)`` batches (``attack``: per-image bool, see
    :func:`validation_dataset`) and logs ``acc`` (clean, every image), ``fgsm_acc`` and
    ``pgd_acc`` (FGSM, and PGD-``val_pgd_steps`` from a fixed random start, both at ε,
    on the flagged images). Under ``fit`` they appear as ``val_acc``, ``val_fgsm_acc``,
    ``val_pgd_acc``: a high ``val_fgsm_acc`` with a collapsed ``val_pgd_acc`` is
    catastrophic overfitting.
    """

    def __init__(self, classifier, config: Optional[AdversarialTrainingConfig] = None,
                 bounds: Optional[Sequence[float]] = None, **kwargs):
        super().__init__(**kwargs)
        self.training_config = cfg = (config or AdversarialTrainingConfig()).check()
        self.classifier = classifier
        attach_bounds(self, bounds_of(classifier, bounds))      # the classifier's, unless given
        self.eps = float(cfg.epsilon)
        if cfg.method == "fgsm_rs":
            self.train_attack_steps, self.train_attack_step = 1, float(cfg.alpha)
        else:
            self.train_attack_steps, self.train_attack_step = int(cfg.pgd_steps), 2.5 * self.eps / cfg.pgd_steps
        # only_first_replica: every replica counts the same steps (needed to update it under a strategy)
        self.step_counter = self.add_weight(shape=(), dtype="int64", initializer="zeros", trainable=False,
                                            name="adv_step", aggregation="only_first_replica")
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("loss", "adv_acc", "acc", "fgsm_acc", "pgd_acc")}
        self.built = True

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, x, training=False):
        return self.classifier(x, training=training)

    def _logits_eval(self, x):
        return self.classifier(x, training=False)

    def adversarial_batch(self, x, y, seed):
        """The training attack's examples for ``(x, y)`` against the current weights."""
        return linf_attack(self._logits_eval, x, y, self.eps, self.train_attack_step, self.train_attack_steps,
                           self.bounds, seed, rand_init=True)

    def train_step(self, data):
        x, y = data[0], data[1]
        y = tf.cast(y, tf.int64)
        seed = tf.stack([tf.constant(self.training_config.seed, tf.int64), tf.cast(self.step_counter, tf.int64)])
        seed += tf.stack([tf.cast(replica_index(), tf.int64) * 1_000_003, tf.constant(0, tf.int64)])  # replica 0: as one device
        x_adv = self.adversarial_batch(x, y, seed)
        with tf.GradientTape() as tape:
            logits = self.classifier(x_adv, training=True)
            per_image = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            loss = tf.reduce_mean(per_image)
        vars_ = self.classifier.trainable_variables
        # the optimizer sums the replicas' gradients: scale by 1 / replicas (identity on one device)
        self.optimizer.apply_gradients(zip(replica_scaled(tape.gradient(loss, vars_)), vars_))
        self.step_counter.assign_add(1)
        self.trackers["loss"].update_state(per_image)
        self.trackers["adv_acc"].update_state(_correct(logits, y))
        return {k: self.trackers[k].result() for k in ("loss", "adv_acc")}

    def test_step(self, data):
        x, y = data[0], tf.cast(data[1], tf.int64)
        attack = tf.cast(data[2], tf.bool) if len(data) > 2 else tf.ones_like(y, tf.bool)
        clean = _correct(self._logits_eval(x), y)
        self.trackers["acc"].update_state(clean)
        k = self.training_config.val_pgd_steps
        seed = tf.constant([self.training_config.seed, 1 << 30], tf.int64)   # the same start every epoch

        def attacked():
            x_fgsm = linf_attack(self._logits_eval, x, y, self.eps, self.eps, 1, self.bounds,
                                 rand_init=False)
            x_pgd = linf_attack(self._logits_eval, x, y, self.eps, 2.5 * self.eps / k, k, self.bounds,
                                seed, rand_init=True)
            return _correct(self._logits_eval(x_fgsm), y), _correct(self._logits_eval(x_pgd), y)

        fgsm_ok, pgd_ok = tf.cond(tf.reduce_any(attack), attacked, lambda: (tf.zeros_like(clean), tf.zeros_like(clean)))
        w = tf.cast(attack, tf.float32)
        self.trackers["fgsm_acc"].update_state(fgsm_ok, sample_weight=w)
        self.trackers["pgd_acc"].update_state(pgd_ok, sample_weight=w)
        return {k: self.trackers[k].result() for k in VAL_KEYS}


def validation_dataset(x_val, y_val, n_attack: int, batch_size: int = VAL_BATCH) -> tf.data.Dataset:
    """``(x, y, attack)`` batches: every image is scored clean, the first ``n_attack`` also attacked.

    ``attack`` is 1.0 / 0.0 (float32, not bool: under a ``tf.distribute`` strategy Keras averages
    the first batch over the replicas to build the model, which bool tensors do not support)."""
    flags = (np.arange(len(x_val)) < n_attack).astype(np.float32)
    return tf.data.Dataset.from_tensor_slices((x_val, y_val, flags)).batch(batch_size).cache()


# --------------------------------------------------------------------------- schedule
@keras.saving.register_keras_serializable(package="tf_inc")
class CyclicLR(keras.optimizers.schedules.LearningRateSchedule):
    """Wong et al.'s cyclic ("one-cycle") rate: linear 0 → ``peak`` at ``peak_frac`` of ``total_steps`` → 0."""

    def __init__(self, peak: float, total_steps: int, peak_frac: float = 0.4):
        super().__init__()
        self.peak, self.total_steps, self.peak_frac = float(peak), int(total_steps), float(peak_frac)

    def __call__(self, step):
        t = keras.ops.cast(step, "float32") + 1.0          # the rate of the (step+1)-th update, as Wong et al.
        total = float(max(self.total_steps, 1))
        up = max(self.peak_frac * total, 1.0)
        frac = tf.where(t <= up, t / up, (total - t) / max(total - up, 1.0))
        return self.peak * tf.clip_by_value(frac, 0.0, 1.0)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "peak_frac": self.peak_frac}


def learning_rate(cfg: AdversarialTrainingConfig, total_steps: int):
    if cfg.lr_schedule == "cyclic":
        return CyclicLR(cfg.learning_rate, total_steps)
    if cfg.lr_schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(cfg.learning_rate, decay_steps=total_steps)
    return cfg.learning_rate


# --------------------------------------------------------------------------- driver
def _epoch_log(run_dir: Path):
    """Last logged record of every epoch in ``run_dir/metrics.jsonl`` (a resumed run may repeat one)."""
    p = run_dir / "metrics.jsonl"
    recs = {}
    if p.exists():
        for line in p.read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                recs[int(r["round"])] = r
    return [recs[k] for k in sorted(recs)]


def catastrophic_overfitting_epochs(records) -> list:
    """Epochs whose validation PGD accuracy fell ``CO_DROP`` below the best so far while the
    FGSM accuracy stayed ``CO_GAP`` above it."""
    best, out = -1.0, []
    for r in records:
        pgd, fgsm = r.get("val_pgd_acc"), r.get("val_fgsm_acc")
        if pgd is None or fgsm is None:
            continue
        if pgd < best - CO_DROP and fgsm > pgd + CO_GAP:
            out.append(int(r["round"]))
        best = max(best, pgd)
    return out


def _best_epoch(run_dir: Path) -> Optional[int]:
    state = tf.train.get_checkpoint_state(str(run_dir / "best"))
    if state is None or not state.model_checkpoint_path:
        return None
    try:
        return int(state.model_checkpoint_path.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return None


def train_adversarial_classifier(cfg: AdversarialTrainingConfig = AdversarialTrainingConfig(), verbose: int = 1,
                                 classifier: Optional[keras.Model] = None):
    """Adversarially train the deep-MNIST classifier; save it and return ``(model, metrics)``.

    Trains from scratch (``mnist_classifier()``) unless ``classifier`` is given, in which case
    a copy of it is fine-tuned; it must not have seen the validation split (the last ``n_val``
    train images), or the best-epoch selection is biased. The run resumes from ``cfg.run_dir``
    after an interruption. The kept weights are those of the epoch with the best validation
    PGD accuracy; ``metrics`` holds their validation ``val_acc`` / ``val_fgsm_acc`` /
    ``val_pgd_acc``, ``best_epoch``, ``epochs_completed``, ``stopped_early``,
    ``catastrophic_overfitting_epochs``, the split sizes, ``train_time_s`` and ``out``.
    """
    from tf_inc.bounds import dataset_bounds
    from tf_inc.experiments.manifest import save_and_record
    from tf_inc.models.classifiers import mnist_classifier
    from tf_inc.paths import model_path
    from tf_inc.training.distribute import make_strategy, worker_path
    from tf_inc.training.loop import fit_resumable

    cfg.check()
    strategy = make_strategy(cfg.strategy)        # first: multiworker configures collectives at startup
    keras.utils.set_random_seed(cfg.seed)
    (x_tr, y_tr), (x_val, y_val) = train_val_split(cfg.n_val, cfg.n_train)
    if classifier is not None and bounds_of(classifier) != dataset_bounds("mnist"):
        raise InputError(f"classifier: expects pixels in {bounds_of(classifier)}, MNIST's are "
                         f"{dataset_bounds('mnist')}")
    with strategy.scope():
        if classifier is None:
            model = mnist_classifier(name="mnist_classifier_advtrain")
        else:
            model = keras.models.clone_model(classifier)
            model.set_weights(classifier.get_weights())
            attach_bounds(model, dataset_bounds("mnist"))
        trainer = AdversarialTrainer(model, cfg)
        steps = int(math.ceil(len(x_tr) / cfg.batch_size))
        trainer.compile(optimizer=keras.optimizers.Adam(learning_rate(cfg, steps * cfg.epochs)))
    val_ds = validation_dataset(x_val, y_val, cfg.n_val_attack)

    def make_ds(r):
        return (tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
                .shuffle(len(x_tr), seed=cfg.seed * 1000 + r, reshuffle_each_iteration=False)
                .batch(cfg.batch_size)
                .prefetch(tf.data.AUTOTUNE))

    run_dir = Path(cfg.run_dir)
    t0 = time.time()
    logs = fit_resumable(trainer, make_ds, rounds=cfg.epochs, run_dir=run_dir, val_ds=val_ds,
                         optimizers={"optimizer": trainer.optimizer},
                         optimizer_variables={"optimizer": model.trainable_variables},
                         early_stopping_metric="val_pgd_acc", early_stopping_mode="max", patience=cfg.patience,
                         verbose=verbose, strategy=strategy)
    train_time = time.time() - t0
    records = _epoch_log(run_dir)
    best = _best_epoch(run_dir)
    kept = next((r for r in records if int(r["round"]) == best), None)
    if kept is not None and all(f"val_{k}" in kept for k in VAL_KEYS):
        # validation is deterministic (eval mode, fixed attack start), so the kept epoch's
        # logged numbers are those of the restored weights: no second validation pass
        val = {k: kept[f"val_{k}"] for k in VAL_KEYS}
    else:
        val = trainer.evaluate(val_ds, return_dict=True, verbose=0)
    co = catastrophic_overfitting_epochs(records)
    out = Path(cfg.out) if cfg.out else model_path("mnist_classifier_advtrain.keras")
    out = worker_path(out, strategy)          # non-chief workers save a private copy
    metrics = {
        "val_acc": float(val["acc"]), "val_fgsm_acc": float(val["fgsm_acc"]), "val_pgd_acc": float(val["pgd_acc"]),
        "best_epoch": best, "epochs_completed": int(logs["rounds_completed"]),
        "stopped_early": bool(logs["stopped_early"]), "catastrophic_overfitting_epochs": co,
        "n_train": len(x_tr), "n_val": len(x_val), "n_val_attack": int(cfg.n_val_attack),
        "train_time_s": round(train_time, 1), "out": str(out),
    }
    save_and_record(model, out, command="python -m tf_inc.training adv-classifier", config=cfg,
                    metrics={k: v for k, v in metrics.items() if k.startswith("val_")},
                    best_epoch=best, catastrophic_overfitting_epochs=co, train_seconds=round(train_time, 1))
    if co:
        print(f"[tf-inc] catastrophic overfitting (validation PGD accuracy collapsed, FGSM accuracy did not) "
              f"at epoch(s) {co}; kept epoch {metrics['best_epoch']}", flush=True)
    print(f"[tf-inc] adversarially trained classifier ({cfg.method}, ε={cfg.epsilon}): validation clean accuracy "
          f"{metrics['val_acc']:.4f}, PGD-{cfg.val_pgd_steps} accuracy {metrics['val_pgd_acc']:.4f} "
          f"(FGSM {metrics['val_fgsm_acc']:.4f}; {cfg.n_val_attack} of {len(x_val)} validation images attacked) "
          f"from epoch {metrics['best_epoch']} ({train_time:.0f}s) -> {out}", flush=True)
    return model, metrics
