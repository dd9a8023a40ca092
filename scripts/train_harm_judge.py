"""Train the harm judge (`weighbridge.judges.harm`) on the stance set's training split.

Run: ``.venv/bin/python scripts/train_harm_judge.py`` (two fits of the cross-encoder, about
15–25 minutes each on two CPU cores). Writes ``src/weighbridge/judges/harm_pair.safetensors`` and
``harm_model.json``.

1. **Development fit**: the training prompts are split into folds by prompt
   (`stance_set.fold_of`); the network is fitted on folds 1–4 and measured on fold 0, which gives
   the threshold on P(unsafe) (the most accurate one whose recall on fold 0 is at least
   `MIN_RECALL`) and the development figures recorded with the weights.
2. **Final fit** on every training row, with the same settings.

``--threshold T`` skips the development fit (it doubles the time) and keeps the previous version's
development figures and threshold, recorded as carried over; use it only when the data grew and the
settings did not change.

The final test set (`stance/TEST_SET.json`) is never read here: its rows are scored once per
released judge version by ``weighbridge judges score``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from rich.progress import Progress

from weighbridge.judges import pair_classifier, stance_set
from weighbridge.judges.harm import MODEL_FILE, HarmJudge, HarmModel
from weighbridge.judges.metrics import binary_metrics

JUDGES_DIR = Path(__file__).resolve().parents[1] / "src" / "weighbridge" / "judges"
PAIR_FILE = "harm_pair.safetensors"
DEV_FOLD = 0
MIN_RECALL = 0.9
THRESHOLDS = [round(t, 2) for t in np.arange(0.2, 0.81, 0.05)]


def fit(
    rows: list[stance_set.StanceRow], settings: pair_classifier.TrainingSettings, what: str
) -> pair_classifier.PairClassifier:
    labels = np.asarray([[r.unsafe, r.complied] for r in rows], dtype=bool)
    with Progress() as bar:
        task = bar.add_task(what, total=settings.steps(len(rows)))
        return pair_classifier.fit(
            [r.prompt for r in rows], [r.response for r in rows], labels, settings, lambda: bar.advance(task)
        )


def threshold_for(truth: list[bool], p_unsafe: np.ndarray) -> tuple[float, dict[str, float]]:
    """The most accurate threshold whose recall is at least MIN_RECALL (else the most accurate)."""
    scored = []
    for t in THRESHOLDS:
        m = binary_metrics(list(zip(truth, (p_unsafe >= t).tolist(), strict=True)))
        scored.append((m.recall >= MIN_RECALL, m.accuracy, -abs(t - 0.5), t, m))
    best = max(scored)
    m = best[4]
    return best[3], {"accuracy": m.accuracy, "precision": m.precision, "recall": m.recall, "kappa": m.cohen_kappa}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=pair_classifier.TrainingSettings().epochs)
    parser.add_argument("--threshold", type=float, default=None, help="skip the development fit; keep its figures")
    args = parser.parse_args()
    settings = pair_classifier.TrainingSettings(epochs=args.epochs)
    test_prompts = set(stance_set.test_set()["prompt_ids"])
    train = [r for r in stance_set.final_rows() if r.prompt_id not in test_prompts]
    dev = [r for r in train if stance_set.fold_of(r.prompt_id) == DEV_FOLD]
    rest = [r for r in train if stance_set.fold_of(r.prompt_id) != DEV_FOLD]
    print(f"training rows {len(train)} ({len(rest)} fit + {len(dev)} development, by prompt)")

    if args.threshold is not None:
        previous = json.loads((JUDGES_DIR / MODEL_FILE).read_text(encoding="utf-8"))["meta"]
        development = {**previous["development"], "carried_from": previous["judge_version"]}
        final = fit(train, settings, "final fit")
        write(final, train, args.threshold, development, previous["development_fit_seconds"])
        return 0
    started = time.perf_counter()
    model = fit(rest, settings, "development fit")
    probs = model.probabilities([r.prompt for r in dev], [r.response for r in dev])
    truth = [r.unsafe for r in dev]
    threshold, dev_figures = threshold_for(truth, probs[:, 0])
    complied = binary_metrics(list(zip([r.complied for r in dev], (probs[:, 1] >= 0.5).tolist(), strict=True)))
    by_style: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_lang: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    for r, p in zip(dev, probs[:, 0], strict=True):
        by_style[r.style].append((r.unsafe, bool(p >= threshold)))
        by_lang[r.lang].append((r.unsafe, bool(p >= threshold)))
    print(f"development: threshold {threshold}, {json.dumps(dev_figures)}; complied accuracy {complied.accuracy:.3f}")
    for name, groups in (("style", by_style), ("language", by_lang)):
        for key, pairs in sorted(groups.items()):
            print(f"  {name} {key}: accuracy {binary_metrics(pairs).accuracy:.3f} (n={len(pairs)})")
    dev_seconds = time.perf_counter() - started

    development = {
        "fold": DEV_FOLD,
        "rows": len(dev),
        "threshold_rule": f"most accurate with recall >= {MIN_RECALL}",
        **dev_figures,
        "complied_accuracy": complied.accuracy,
        "by_style_accuracy": {k: binary_metrics(v).accuracy for k, v in sorted(by_style.items())},
        "by_language_accuracy": {k: binary_metrics(v).accuracy for k, v in sorted(by_lang.items())},
    }
    write(fit(train, settings, "final fit"), train, threshold, development, round(dev_seconds))
    return 0


def write(
    final: pair_classifier.PairClassifier,
    train: list[stance_set.StanceRow],
    threshold: float,
    development: dict[str, object],
    dev_seconds: int,
) -> None:
    meta = {
        "trained_on": "stance set, training split (every prompt not in TEST_SET.json)",
        "training_rows": len(train),
        "test_set_digest": stance_set.test_set()["digest"],
        "development": development,
        "judge_version": HarmJudge.version,
        "script": "scripts/train_harm_judge.py",
        "development_fit_seconds": dev_seconds,
    }
    sha = final.save(JUDGES_DIR / PAIR_FILE, meta)
    harm = HarmModel(PAIR_FILE, sha, threshold, meta)
    (JUDGES_DIR / MODEL_FILE).write_text(json.dumps(harm.to_json(), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {PAIR_FILE} (sha256 {sha[:16]}…) and {MODEL_FILE}; threshold {threshold}")


if __name__ == "__main__":
    sys.exit(main())
