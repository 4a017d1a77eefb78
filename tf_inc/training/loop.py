"""Resumable Keras training: checkpoints, TensorBoard scalars, metric log, early stopping.

:func:`fit_resumable` drives ``model.fit`` one *round* at a time (an epoch, or a
fixed number of steps for step-based training such as BEGAN). After every
round it writes a ``tf.train.CheckpointManager`` checkpoint holding the model,
its optimizer(s), the round counter and the early-stopping state, appends the
round's metrics to ``metrics.jsonl`` and writes TensorBoard scalars. Killing
the process at any moment loses at most the round in progress; calling it
again with the same ``run_dir`` resumes after the last completed round.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, Optional

import keras
import tensorflow as tf


def _build_optimizers(model: keras.Model, optimizers: Dict[str, keras.optimizers.Optimizer],
                      variables: Dict[str, list]) -> None:
    # Keras 3 optimizers create their slots lazily; build them before restoring
    # so that every slot variable is matched by the checkpoint.
    for key, opt in optimizers.items():
        if not opt.built:
            opt.build(variables[key])


class _JsonlLogger(keras.callbacks.Callback):
    def __init__(self, path: Path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        rec = {"round": epoch + 1, "time": time.time()}
        rec.update({k: float(v) for k, v in (logs or {}).items()})
        with open(self.path, "a") as f:
            f.write(json.dumps(rec) + "\n")


def fit_resumable(
    model: keras.Model,
    make_train_ds: Callable[[int], tf.data.Dataset],
    *,
    rounds: int,
    run_dir: Path,
    val_ds: Optional[tf.data.Dataset] = None,
    steps_per_round: Optional[int] = None,
    optimizers: Optional[Dict[str, keras.optimizers.Optimizer]] = None,
    optimizer_variables: Optional[Dict[str, list]] = None,
    early_stopping_metric: Optional[str] = None,
    early_stopping_mode: str = "min",
    patience: int = 5,
    min_delta: float = 0.0,
    max_to_keep: int = 2,
    verbose: int = 1,
    extra_callbacks: Iterable[keras.callbacks.Callback] = (),
) -> Dict[str, float]:
    """Train ``model`` (already compiled) for ``rounds`` rounds, resuming from ``run_dir``.

    Args:
      make_train_ds: ``round_index -> dataset`` (seed the shuffle with the round
        so a resumed run sees the same data order as an uninterrupted one).
      steps_per_round: steps per round for step-based training (``None``: one epoch).
      optimizers / optimizer_variables: for models with several optimizers
        (e.g. BEGAN); by default ``{"optimizer": model.optimizer}``.
      early_stopping_metric: e.g. ``"val_loss"``; training stops after
        ``patience`` rounds without improvement by more than ``min_delta``,
        and the best weights are restored.

    Returns the last round's logs plus ``rounds_completed`` and ``stopped_early``.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if optimizers is None:
        optimizers = {"optimizer": model.optimizer}
        optimizer_variables = {"optimizer": model.trainable_variables}
    _build_optimizers(model, optimizers, optimizer_variables or {})

    sign = 1.0 if early_stopping_mode == "min" else -1.0
    round_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="round")
    best_var = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best")
    bad_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_rounds")
    stopped_var = tf.Variable(False, trainable=False, name="stopped")
    ckpt = tf.train.Checkpoint(model=model, round=round_var, best=best_var, bad=bad_var,
                               stopped=stopped_var, **optimizers)
    best_ckpt = tf.train.Checkpoint(model=model)
    manager = tf.train.CheckpointManager(ckpt, str(run_dir / "ckpt"), max_to_keep=max_to_keep)
    best_manager = tf.train.CheckpointManager(best_ckpt, str(run_dir / "best"), max_to_keep=1)
    if manager.latest_checkpoint:
        ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
        if verbose:
            print(f"[tf-inc] resuming {run_dir} after round {int(round_var.numpy())}/{rounds}", flush=True)

    writer = tf.summary.create_file_writer(str(run_dir / "tensorboard"))
    logs: Dict[str, float] = {}
    start = int(round_var.numpy())
    for r in range(start, rounds):
        if bool(stopped_var.numpy()):
            break
        history = model.fit(
            make_train_ds(r),
            epochs=r + 1,
            initial_epoch=r,
            steps_per_epoch=steps_per_round,
            validation_data=val_ds,
            verbose=verbose,
            shuffle=False,
            callbacks=[_JsonlLogger(run_dir / "metrics.jsonl"), *extra_callbacks],
        )
        logs = {k: float(v[-1]) for k, v in history.history.items()}
        with writer.as_default(step=r + 1):
            for k, v in logs.items():
                tf.summary.scalar(k, v)
        writer.flush()
        if early_stopping_metric is not None:
            if early_stopping_metric not in logs:
                raise KeyError(f"early-stopping metric {early_stopping_metric!r} not in {sorted(logs)}")
            value = sign * logs[early_stopping_metric]
            if value < float(best_var.numpy()) - min_delta:
                best_var.assign(value)
                bad_var.assign(0)
                best_manager.save(checkpoint_number=r + 1)
            else:
                bad_var.assign_add(1)
                if int(bad_var.numpy()) >= patience:
                    stopped_var.assign(True)
                    if verbose:
                        print(f"[tf-inc] early stop: {early_stopping_metric} has not improved for "
                              f"{patience} rounds", flush=True)
        round_var.assign(r + 1)
        manager.save(checkpoint_number=r + 1)
    if early_stopping_metric is not None and best_manager.latest_checkpoint:
        best_ckpt.restore(best_manager.latest_checkpoint).expect_partial()
        logs["best_" + early_stopping_metric] = sign * float(best_var.numpy())
    logs["rounds_completed"] = float(round_var.numpy())
    logs["stopped_early"] = float(bool(stopped_var.numpy()))
    return logs
