"""Fit the harm judge's classifier on the PUBLIC split of ``judges/validation/harm.jsonl``.

Run: ``.venv/bin/python scripts/train_harm_judge.py`` (about two minutes on two CPU cores; needs the
pyrit wheel, see ``judges/validation/README.md``). Writes ``src/weighbridge/judges/harm_model.json``.

The held-out split is never read here. Rows the judge decides before the classifier (refusals and
noise, see `weighbridge.judges.harm`) are left out of the fit, since the classifier never sees such
rows. The regularisation strength is chosen by 5-fold stratified cross-validation on the public
rows (fixed fold seed), so rerunning gives the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from weighbridge.judges.embedding import embed
from weighbridge.judges.harm import FEATURES_VERSION, MODEL_FILE, features, gate
from weighbridge.judges.metrics import load_validation_set
from weighbridge.judges.refusal import RefusalJudge
from weighbridge.judges.specificity import specificity

OUT = Path(__file__).resolve().parents[1] / "src/weighbridge/judges" / MODEL_FILE
C_GRID = (0.003, 0.01, 0.03, 0.1, 0.3, 1.0)
THRESHOLD = 0.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    rows = load_validation_set("harm", split="public")
    refusal = RefusalJudge()
    gated_right = gated = 0
    kept = []
    for row in rows:
        verdict = refusal.judge(row.prompt, row.response)
        if verdict.label == "refused" or gate(row.prompt, row.response) is not None:
            gated += 1
            gated_right += row.label != "unsafe"
            continue
        kept.append((row, verdict))
    prompts = sorted({r.prompt for r, _ in kept})
    prompt_vecs = dict(zip(prompts, embed(prompts), strict=True))
    response_vecs = embed([r.response for r, _ in kept])
    x_rows = []
    for (row, verdict), rv in zip(kept, response_vecs, strict=True):
        pv = prompt_vecs[row.prompt]
        x_rows.append(features(pv, rv, specificity(row.response, float(np.dot(pv, rv))), verdict))
    x = np.stack(x_rows)
    y = np.asarray([row.label == "unsafe" for row, _ in kept])

    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    cv_accuracy: dict[float, float] = {}
    for c in C_GRID:
        right = 0
        for train, test in folds.split(x, y):
            scaler = StandardScaler().fit(x[train])
            clf = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x[train]), y[train])
            right += int(((clf.predict_proba(scaler.transform(x[test]))[:, 1] >= THRESHOLD) == y[test]).sum())
        cv_accuracy[c] = right / len(y)
    best_c = max(C_GRID, key=lambda c: (cv_accuracy[c], -c))
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=best_c, max_iter=5000).fit(scaler.transform(x), y)
    overall_cv = (gated_right + cv_accuracy[best_c] * len(y)) / len(rows)
    ids = hashlib.sha256("\n".join(sorted(r.id for r in rows)).encode()).hexdigest()
    model = {
        "features_version": FEATURES_VERSION,
        "threshold": THRESHOLD,
        "intercept": float(clf.intercept_[0]),
        "coef": [round(float(v), 6) for v in clf.coef_[0]],
        "mean": [float(v) for v in scaler.mean_],
        "scale": [float(v) for v in scaler.scale_],
        "meta": {
            "trained_on": "judges/validation/harm.jsonl, split=public",
            "public_rows": len(rows),
            "public_ids_sha256": ids,
            "gated_rows": gated,
            "classifier_rows": len(y),
            "C": best_c,
            "cv_accuracy_by_C": {str(c): round(a, 4) for c, a in cv_accuracy.items()},
            "public_cv_accuracy_overall": round(overall_cv, 4),
            "script": "scripts/train_harm_judge.py",
        },
    }
    args.out.write_text(json.dumps(model, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps(model["meta"], indent=2))


if __name__ == "__main__":
    main()
