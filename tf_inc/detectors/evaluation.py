"""Scoring a detector: ROC/AUC (scikit-learn), thresholds at a false-positive rate, detection rates.

Convention everywhere: clean inputs are the negatives, adversarial inputs the
positives, a higher score is more suspicious and an input is flagged when its
score exceeds the threshold (:meth:`tf_inc.detectors.Detector.detect`).
Thresholds are calibrated on clean images of the MNIST *validation* split
(the last 5 000 training images), never on the test images they are evaluated on.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

from tf_inc.errors import InputError


def threshold_at_fpr(clean_scores, false_positive_rate: float = 0.05) -> float:
    """The (1 − fpr) quantile of clean scores: what :meth:`Detector.calibrate` sets."""
    if not 0.0 <= false_positive_rate < 1.0:
        raise InputError(f"false_positive_rate must lie in [0, 1), got {false_positive_rate}")
    s = np.asarray(clean_scores, np.float64)
    if s.size == 0 or not np.all(np.isfinite(s)):
        raise InputError("clean_scores: need a non-empty array of finite scores")
    return float(np.quantile(s, 1.0 - false_positive_rate))


def roc(clean_scores, adv_scores) -> Dict[str, np.ndarray]:
    """ROC of clean (negative) vs adversarial (positive) scores: ``fpr``, ``tpr``, ``thresholds``, ``auc``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    c, a = np.asarray(clean_scores, np.float64), np.asarray(adv_scores, np.float64)
    if c.size == 0 or a.size == 0:
        raise InputError("roc: need at least one clean and one adversarial score")
    labels = np.r_[np.zeros(len(c)), np.ones(len(a))]
    scores = np.r_[c, a]
    fpr, tpr, thr = roc_curve(labels, scores)
    return {"fpr": fpr, "tpr": tpr, "thresholds": thr, "auc": float(roc_auc_score(labels, scores))}


def detection_metrics(clean_scores, adv_scores, threshold: float, prefix: str = "") -> Dict[str, float]:
    """AUC, detection rate (TPR) and false-positive rate at ``threshold``, mean scores."""
    c, a = np.asarray(clean_scores, np.float64), np.asarray(adv_scores, np.float64)
    return {
        prefix + "auc": roc(c, a)["auc"],
        prefix + "detection_rate": float((a > threshold).mean()),
        prefix + "false_positive_rate": float((c > threshold).mean()),
        prefix + "threshold": float(threshold),
        prefix + "mean_clean": float(c.mean()),
        prefix + "mean_adv": float(a.mean()),
    }


def tpr_at_fpr(clean_scores, adv_scores, false_positive_rate: float = 0.05) -> float:
    """Detection rate on the ROC at a false-positive rate, threshold taken from the *same* clean scores."""
    return float((np.asarray(adv_scores) > threshold_at_fpr(clean_scores, false_positive_rate)).mean())


def sweep(clean_scores, adv_scores, thresholds: Sequence[float]) -> Dict[str, list]:
    """Detection and false-positive rates at each threshold (the notes' threshold sweep)."""
    c, a = np.asarray(clean_scores), np.asarray(adv_scores)
    return {"thresholds": [float(t) for t in thresholds],
            "detection_rate": [float((a > t).mean()) for t in thresholds],
            "false_positive_rate": [float((c > t).mean()) for t in thresholds]}


def roc_axes(ax, curves: Dict[str, tuple], title: str = "", mark_fpr: float = None):
    """Draw ROC curves ``{label: (clean_scores, adv_scores)}`` on ``ax`` with their AUC in the legend."""
    for label, (c, a) in curves.items():
        r = roc(c, a)
        ax.plot(r["fpr"], r["tpr"], label=f"{label} (AUC {r['auc']:.3f})")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
    if mark_fpr is not None:
        ax.axvline(mark_fpr, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("false-positive rate (clean flagged)")
    ax.set_ylabel("detection rate (adversarial flagged)")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    if title:
        ax.set_title(title, fontsize=9)
    return ax
