"""``REPRODUCTION.md`` from the committed result files: the paper's numbers beside ours.

``make report`` (``python -m tf_inc.experiments.report``) reads every ``results/<name>.json``
written by the figure / table scripts and renders one section per paper figure or table: what
the paper reports, what we measured (with n, dataset, settings and runtime, all taken from the
JSON, never typed by hand), the command that regenerates it and a one-line reason for each
deviation. Rows that need data this machine does not have (CelebA, ImageNet-1000, ResNet152
weights) say exactly which files and which command fill them. The report is deterministic in
its inputs, so CI can check that the committed ``REPRODUCTION.md`` is up to date.
"""
from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from tf_inc.io import atomic_write_bytes
from tf_inc.paths import REPO_ROOT


@dataclass(frozen=True)
class Entry:
    """One section of the report: a paper figure/table (or a notes system) and its result file."""

    name: str                       # script / result name
    title: str
    paper: str                      # what the paper (or the notes) reports, in words and numbers
    deviation: str = ""             # why our setting differs, one line
    command: str = ""               # default: python scripts/<name>.py
    keys: Sequence[str] = ()        # scalar metric keys to show (default: the paper's keys, then the first few)
    needs: str = ""                 # data that is not on this machine, and where to put it
    grid: Optional[tuple] = None    # (config field of the rows, of the columns, key format with {row} and {col})

    @property
    def cmd(self) -> str:
        return self.command or f"python scripts/{self.name}.py"


CELEBA_NEEDS = ("CelebA: put `img_align_celeba/` (the aligned JPEGs), `list_attr_celeba.txt` and "
                "`list_eval_partition.txt` in `data/celeba/` (or `$TF_INC_CELEBA`), then "
                "`python -m tf_inc.training celeba-classifier` and `python -m tf_inc.training began`")

ENTRIES: List[Entry] = [
    Entry("figure3_mnist_fgsm", "Figure 3 — MNIST, FGSM: classifier vs Invert-and-Classify",
          "A plot only: the classifier falls towards 0 % as ε grows to 0.3 while INC stays high "
          "(no numbers in the text).",
          "n = 300 test images by default (the paper does not state n); the figure's curves are read "
          "from the JSON.",
          keys=("eps", "classifier_acc", "inc_acc")),
    Entry("figure4_reconstructions", "Figure 4 — reconstructions x, G(z*), x_adv, G(z*_adv)",
          "Qualitative (CelebA in the paper): reconstructions of adversarial inputs look like the "
          "clean digit/face and are classified correctly.",
          "MNIST here; the CelebA version needs the data.", needs=CELEBA_NEEDS),
    Entry("table1_attacks", "Table 1 — classifier and INC under FGSM and Carlini–Wagner",
          "CelebA (gender): no defence 97 / 1 / 0 / 0 / 0 / 0 / 0 %, INC 84 / 82 / 80 / 73 / 77 / 65 / 66 % "
          "for clean, FGSM 0.05 / 0.1 / 0.2, CW ℓ2 / ℓ0 / ℓ∞.",
          "Run on MNIST here (no CelebA on this machine); `--dataset celeba` runs the paper's setting.",
          needs=CELEBA_NEEDS),
    Entry("figure5_substitute", "Figure 5 — substitute-model (black-box) attacks do not transfer to INC",
          "CelebA: FGSM and BIM-20 made on a substitute at ε 0.01–0.2 transfer to INC in few cases.",
          "MNIST here; `--dataset celeba` for the paper's setting.", needs=CELEBA_NEEDS),
    Entry("figure12_combined_attack", "Figure 12 — attacks through the encoder (autoencode-and-classify)",
          "Attacks on C(G(E(x))) succeed on it but mostly do not transfer to INC (plot only).",
          keys=("eps", "autoencoder_acc", "inc_acc", "classifier_acc")),
    Entry("bpda_attack", "BPDA attack on INC (Athalye et al. 2018 budgets)",
          "Not in the paper. Athalye et al. report Defense-GAN at 55 % under ‖δ‖₂ ≈ 3.9 (our `l2_4.0`).",
          "20 BPDA-PGD iterations, no EOT: a quick check; the adaptive table below is the headline."),
    Entry("robustness_table", "Adaptive-attack robustness table (per-image worst case)",
          "Not in the paper (the paper reports no adaptive attack). Defense-GAN: 55 % at ‖δ‖₂ ≈ 3.9 "
          "(Athalye et al. 2018).",
          "n = 200 test images, cheap attacks first and each later attack only on survivors "
          "(AutoAttack-style); see the README's robustness section. A run resumed from its cells records "
          "its last sitting as `runtime`; the cells' `seconds/…` sum to the whole cost.",
          keys=("n",),
          grid=("defences", "budgets", "{row}/worst/{col}")),
    Entry("figure6_minmax_pairs", "Figure 6 — min-max (eq. 9) pairs against standard and robust classifiers",
          "Qualitative pairs G(z), G(z') that look alike but are classified differently; the robust "
          "classifier makes them rarer (Figure 8).",
          "10 000 attack iterations as in the paper; ℓ2 divergence by default."),
    Entry("figure7_robust_training", "Figure 7 — robust manifold training (eq. 10) loss components",
          "Cross-entropy and adversarial components decay during training (plot only)."),
    Entry("figure8_attack_convergence", "Figure 8 — min-max attack objective vs iterations",
          "Average ‖C(G(z)) − C(G(z'))‖ found by the attack is much lower for the robust classifier (plot only)."),
    Entry("figure9_borderline_softmax", "Figure 9 — softmax on borderline generator images",
          "The robust classifier is less confident on borderline images (plot only)."),
    Entry("table2_dip", "Table 2 protocol on MNIST — Deep Image Prior INC",
          "ImageNet/ResNet152 (1000 images): clean 71 → 52 %; BIM ε 0.01: 5 → 49 %, 0.05: 2 → 40 %, "
          "0.1: 1 → 30 % (classifier → DIP-protected).",
          "MNIST and our classifier, embedded default; the paper ran it on ImageNet only."),
    Entry("table2_dip_imagenet", "Table 2 — DIP INC on real ImageNet photos",
          "ResNet152, 1000 ImageNet images: clean 71 → 52 %; BIM ε 0.01: 5 → 49 %, 0.05: 2 → 40 %, "
          "0.1: 1 → 30 %.",
          "SqueezeNet 1.1 on the bundled labelled photos (ResNet152 weights and ImageNet are not on this "
          "machine).",
          needs="ImageNet/ResNet152: a Keras ResNet152 ImageNet weights file and a folder of labelled "
                "validation images, then `python scripts/table2_dip_imagenet.py --classifier resnet152 "
                "--weights <file> --images <dir>`"),
    Entry("figure10_dip_reconstructions", "Figure 10 — DIP reconstructions of clean and adversarial images",
          "Qualitative: early-stopped DIP fits keep the image and lose much of the perturbation."),
    Entry("figure13_15_autoencode_detect", "Figures 13–15 — reconstruction error, latent codes, detection",
          "Adversarial inputs reconstruct worse (Figure 13), encode off the clean cluster (Figure 14); "
          "reconstructions of adversarial inputs look clean (Figure 15)."),
    Entry("bench_inversion", "Benchmark — INC inversion throughput against the machine's matmul peak",
          "Benchmark (no paper number). Target (issue 16): ≥ 0.8 of the measured fp32 matmul peak at batch "
          "≥ 1 000; a `fast` preset reaching Figure 3's INC accuracy with ≤ half the image-steps.",
          command="python bench/bench_inversion.py",
          keys=("peak_gflops", "vae/b64/frac_peak", "vae/b1000/frac_peak", "vae/b10000/frac_peak",
                "vae/b1000/image_steps_per_s", "began/b64/frac_peak", "fast/image_steps_ratio", "fast/max_acc_drop")),
    Entry("bench_distribute", "Benchmark — inversion sharded over tf.distribute replicas (CPU logical devices)",
          "Benchmark (no paper number): images/s against the number of replicas; on one 2-core CPU the "
          "logical devices share the same cores, so this checks overhead, not scaling.",
          command="python bench/bench_distribute.py",
          keys=("none/images_per_s", "replicas_1/images_per_s", "replicas_2/images_per_s", "speedup_2_vs_1")),
    Entry("bench_dip", "Benchmark — K Deep Image Prior fits at once vs one at a time",
          "Benchmark (no paper number). Target (issue 13): ≥ 3× images per hour over one-at-a-time at "
          "identical per-image results.",
          command="python bench/bench_dip.py",
          keys=("paper_500_mse0.005/one_at_a_time/images_per_hour", "paper_500_mse0.005/batched_8/images_per_hour",
                "paper_500_mse0.005/batched_32/images_per_hour", "paper_500_mse0.005/batched_32/speedup_wall",
                "paper_500_mse0.005/batched_32/identical", "fixed_100/batched_32/speedup_wall",
                "keras_loop/batched_speedup_wall")),
]

NOTES_PAPER = "From the accompanying notes (not the paper)."


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "yes" if v else "**no**"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v[:12]) + (", …" if len(v) > 12 else "") + "]"
    return str(v)


def _metrics_table(rec: dict, keys: Sequence[str]) -> List[str]:
    m, paper = rec.get("metrics", {}), rec.get("paper", {}) or {}
    listy = [k for k in keys if isinstance(m.get(k), list)]
    lines: List[str] = []
    if listy:
        lines += ["| " + " | ".join(listy) + " |", "|" + "---|" * len(listy)]
        for row in zip(*(m[k] for k in listy)):
            lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
        lines.append("")
    scalar = [k for k in keys if k in m and not isinstance(m[k], list)]
    if not keys:
        scalar = [k for k in paper if k in m] or [k for k, v in m.items() if not isinstance(v, list)][:12]
    if scalar:
        lines += ["| metric | ours | paper |", "|---|---|---|"]
        for k in scalar:
            lines.append(f"| `{k}` | {_fmt(m[k])} | {_fmt(paper[k]) if k in paper else '—'} |")
        lines.append("")
    checks = {k: v for k, v in m.items() if k.startswith("checks/")}
    if checks:
        failed = [k for k, v in checks.items() if v is False]
        lines.append(f"Sanity checks: {len(checks) - len(failed)}/{len(checks)} pass"
                     + (f"; **failed**: {', '.join(f'`{k}`' for k in failed)}" if failed else "") + ".")
        lines.append("")
    return lines


def _grid_table(rec: dict, grid: tuple) -> List[str]:
    """Rows × columns of accuracies (``key`` per cell, with its ``key/ci95`` interval when stored).

    The rows and columns are the run's own, read from its recorded config (e.g. the defences and
    budgets it was run with), so the report never lists names the script did not use."""
    row_field, col_field, fmt = grid
    cfg, m = rec.get("config", {}) or {}, rec.get("metrics", {})
    rows, cols = cfg.get(row_field, []), cfg.get(col_field, [])
    present = [r for r in rows if any(fmt.format(row=r, col=c) in m for c in cols)]
    if not present:
        return []
    lines = ["| | " + " | ".join(f"`{c}`" for c in cols) + " |", "|---|" + "---|" * len(cols)]
    for r in present:
        cells = []
        for c in cols:
            k = fmt.format(row=r, col=c)
            if k not in m:
                cells.append("—")
                continue
            ci = m.get(k + "/ci95")
            cells.append(f"{m[k] * 100:.1f} %" + (f" ({ci[0] * 100:.0f}–{ci[1] * 100:.0f})" if ci else ""))
        lines.append(f"| `{r}` | " + " | ".join(cells) + " |")
    return lines + ["", f"Accuracy in %, 95 % Wilson interval in brackets (keys `{fmt}`).", ""]


def _settings(rec: dict) -> str:
    cfg = rec.get("config", {}) or {}
    n = rec.get("metrics", {}).get("n", cfg.get("n"))
    bits = [f"dataset {rec.get('dataset', '?')}"]
    if n is not None:
        bits.append(f"n = {n}")
    if "seed" in cfg:
        bits.append(f"seed {cfg['seed']}")
    rt = rec.get("runtime_s")
    if rt is not None:
        bits.append(f"runtime {rt / 60:.1f} min on this 2-core CPU" if rt >= 60 else f"runtime {rt:.0f} s")
    if rec.get("git_commit"):
        bits.append(f"commit `{str(rec['git_commit'])[:10]}`")
    return ", ".join(bits)


def _section(e: Entry, results: Path) -> List[str]:
    path = results / f"{e.name}.json"
    lines = [f"## {e.title}", "", f"*Paper:* {e.paper}", ""]
    if path.exists():
        rec = json.loads(path.read_text())
        lines += [f"*Ours* (`results/{e.name}.json`; {_settings(rec)}):", ""]
        if e.grid:
            lines += _grid_table(rec, e.grid)
        lines += _metrics_table(rec, e.keys)
        pngs = sorted(p.name for p in results.glob(f"{e.name}*.png"))
        if pngs:
            lines += ["Figures: " + ", ".join(f"[`{p}`](results/{p})" for p in pngs), ""]
    else:
        lines += [f"*Ours:* not run yet — `{e.cmd}` writes `results/{e.name}.json`.", ""]
    if e.deviation:
        lines += [f"*Deviation:* {e.deviation}", ""]
    if e.needs:
        lines += [f"*Not measurable here:* {e.needs}.", ""]
    lines += [f"*Regenerate:* `{e.cmd}`", ""]
    return lines


def render(results: Path) -> str:
    results = Path(results)
    lines = [
        "# Reproduction report",
        "",
        "Generated by `make report` (`python -m tf_inc.experiments.report`) from the committed "
        "`results/*.json`; do not edit by hand. Every number below is read from a result file written by "
        "the script named beside it, on this project's shipped models (selected on the MNIST validation "
        "split; all accuracies are on the test split). Machine: 2 CPU cores, no GPU.",
        "",
    ]
    for e in ENTRIES:
        lines += _section(e, results)
    known = {e.name for e in ENTRIES}
    for path in sorted(results.glob("notes_*.json")) + sorted(results.glob("bench_*.json")):
        name = path.stem
        if name in known:
            continue
        rec = json.loads(path.read_text())
        paper = NOTES_PAPER if name.startswith("notes_") else "Benchmark (no paper number)."
        lines += _section(Entry(name, f"{rec.get('paper_ref') or name}", paper,
                                command=f"python {'bench' if name.startswith('bench_') else 'scripts'}/{name}.py"),
                          results)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: Optional[Sequence[str]] = None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default=str(REPO_ROOT / "results"), help="directory of result JSON files")
    ap.add_argument("--out", default=str(REPO_ROOT / "REPRODUCTION.md"), help="report path")
    ap.add_argument("--check", action="store_true", help="exit 1 if the report on disk is out of date")
    args = ap.parse_args(argv)
    text = render(Path(args.results))
    out = Path(args.out)
    if args.check:
        if not out.exists() or out.read_text() != text:
            raise SystemExit(f"{out} is out of date: run `make report`")
        print(f"{out} is up to date")
        return out
    atomic_write_bytes(out, text.encode())
    print(f"report: {out.resolve()}")
    return out


if __name__ == "__main__":
    main()
