"""Training drivers: the resumable fit loop, the classifiers, the encoder of §4.2.3.

``vae/`` and ``began/`` call :func:`tf_inc.training.loop.fit_resumable` too; the
robust manifold training of eq. 10 lives with the defences
(:mod:`tf_inc.defences.robust_training`). ``python -m tf_inc.training <model>``
trains any of them (:mod:`tf_inc.training.cli`).
"""
