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


class _Progress(keras.callbacks.Callback):
    """One tqdm bar for the whole run: steps of all rounds, true total, ETA, latest metrics.

    Keras' own bar restarts at "Epoch 1/1" every round (``fit_resumable`` calls ``fit`` once per
    round), which hides how far the run is; this bar counts optimisation steps over every round,
    starts at the resumed position and shows the round and the last metrics as its postfix.
    """

    def __init__(self, desc: str, rounds: int, start: int, steps_per_round: Optional[int]):
        super().__init__()
        from tqdm.auto import tqdm

        self.rounds, self.steps = rounds, steps_per_round
        total = rounds * steps_per_round if steps_per_round else rounds
        initial = start * steps_per_round if steps_per_round else start
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="step" if steps_per_round else "round",
                        dynamic_ncols=True, smoothing=0.05)
        self.round = start
        self._metrics: Dict[str, float] = {}

    def _postfix(self):
        shown = {k: f"{v:.4g}" for k, v in self._metrics.items() if not k.startswith("learning_rate")}
        self.bar.set_postfix(round=f"{self.round + 1}/{self.rounds}", **shown, refresh=False)

    def on_epoch_begin(self, epoch, logs=None):
        self.round = epoch
        self._postfix()

    def on_train_batch_end(self, batch, logs=None):
        if self.steps:
            self.bar.update(1)
            if batch % 50 == 0 and logs:
                self._metrics.update({k: float(v) for k, v in logs.items()})
                self._postfix()

    def on_epoch_end(self, epoch, logs=None):
        self._metrics = {k: float(v) for k, v in (logs or {}).items()}
        if not self.steps:
            self.bar.update(1)
        self._postfix()
        self.bar.refresh()

    def close(self):
        self.bar.close()


def _steps_of(ds: tf.data.Dataset, steps_per_round: Optional[int]) -> Optional[int]:
    if steps_per_round:
        return int(steps_per_round)
    n = int(ds.cardinality())
    return n if n > 0 else None


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
    strategy: Optional[tf.distribute.Strategy] = None,
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
      strategy: the ``tf.distribute`` strategy ``model`` was built under (default: the model's
        own, see :mod:`tf_inc.training.distribute`). The round state and the restore are made
        inside its scope, so a checkpoint written under one strategy resumes under any other.
        Under ``multiworker`` only the chief writes into ``run_dir`` (which every worker must
        see, e.g. a shared filesystem, to resume); the others write to a scratch directory.

    Returns the last round's logs plus ``rounds_completed`` and ``stopped_early``.
    """
    from tf_inc.training import distribute as dist

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    strategy = strategy or getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    write_dir = dist.worker_path(run_dir, strategy)        # run_dir itself except on non-chief workers
    write_dir.mkdir(parents=True, exist_ok=True)
    verbose = verbose if dist.is_chief(strategy) else 0
    if optimizers is None:
        optimizers = {"optimizer": model.optimizer}
        optimizer_variables = {"optimizer": model.trainable_variables}

    sign = 1.0 if early_stopping_mode == "min" else -1.0
    with strategy.scope():
        _build_optimizers(model, optimizers, optimizer_variables or {})
        round_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="round")
        best_var = tf.Variable(math.inf, dtype=tf.float64, trainable=False, name="best")
        bad_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_rounds")
        stopped_var = tf.Variable(False, trainable=False, name="stopped")
        ckpt = tf.train.Checkpoint(model=model, round=round_var, best=best_var, bad=bad_var,
                                   stopped=stopped_var, **optimizers)
        best_ckpt = tf.train.Checkpoint(model=model)
        manager = tf.train.CheckpointManager(ckpt, str(write_dir / "ckpt"), max_to_keep=max_to_keep)
        best_manager = tf.train.CheckpointManager(best_ckpt, str(write_dir / "best"), max_to_keep=1)
        latest = tf.train.latest_checkpoint(str(run_dir / "ckpt"))     # the chief's, on every worker
        if latest:
            ckpt.restore(latest).assert_existing_objects_matched()
            if verbose:
                print(f"[tf-inc] resuming {run_dir} after round {int(round_var.numpy())}/{rounds}", flush=True)

    writer = tf.summary.create_file_writer(str(write_dir / "tensorboard"))
    logs: Dict[str, float] = {}
    start = int(round_var.numpy())
    progress: Optional[_Progress] = None
    t_start = time.time()
    try:
        for r in range(start, rounds):
            if bool(stopped_var.numpy()):
                break
            ds = make_train_ds(r)
            callbacks = [_JsonlLogger(write_dir / "metrics.jsonl"), *extra_callbacks]
            if verbose and progress is None:
                progress = _Progress(f"train {run_dir.name}", rounds, start, _steps_of(ds, steps_per_round))
            if progress is not None:
                callbacks.append(progress)
            history = model.fit(
                ds,
                epochs=r + 1,
                initial_epoch=r,
                steps_per_epoch=steps_per_round,
                validation_data=val_ds,
                verbose=0,
                shuffle=False,
                callbacks=callbacks,
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
                        if progress is not None:
                            progress.bar.write(f"[tf-inc] early stop: {early_stopping_metric} has not "
                                               f"improved for {patience} rounds")
            round_var.assign(r + 1)
            manager.save(checkpoint_number=r + 1)
    finally:
        if progress is not None:
            progress.close()
    best_path = best_manager.latest_checkpoint or tf.train.latest_checkpoint(str(run_dir / "best"))
    if early_stopping_metric is not None and best_path:
        with strategy.scope():
            best_ckpt.restore(best_path).expect_partial()
        logs["best_" + early_stopping_metric] = sign * float(best_var.numpy())
    logs["rounds_completed"] = float(round_var.numpy())
    logs["stopped_early"] = float(bool(stopped_var.numpy()))
    if verbose:
        print(f"[tf-inc] {run_dir}: round {int(round_var.numpy())}/{rounds} after "
              f"{time.time() - t_start:.0f}s in this process", flush=True)
    return logs
