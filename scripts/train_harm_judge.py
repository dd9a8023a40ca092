"""Fit the harm judge's classifier on the PUBLIC split of ``judges/validation/harm.jsonl``.

Run: ``.venv/bin/python scripts/train_harm_judge.py`` (about 50 minutes on two CPU cores, most of
it training the cross-encoder six times; needs the pyrit wheel, see ``judges/validation/README.md``).
Writes ``src/weighbridge/judges/harm_model.json`` and ``harm_pair.safetensors``.

The held-out split is never read here. Rows the judge decides before the classifier (explicit
refusals, noise and echoes, see `weighbridge.judges.harm`) are left out of the fit, since the
classifier never sees such rows, but they count in the accuracy the settings are chosen by.

Settings (each regression's strength and the weight between the embedding and the n-gram model)
are chosen by repeated stratified 5-fold cross-validation on the public rows with fixed seeds, so
rerunning gives the same weights. The n-gram vocabulary is fitted inside each fold, as it would be
on unseen data. The cross-encoder (`weighbridge.judges.pair_classifier`, fixed training settings)
costs minutes per fit, so its weight in the blend is chosen on the first seed's folds only.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import numpy.typing as npt
from rich.progress import Progress
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from weighbridge.judges import pair_classifier
from weighbridge.judges.embedding import embed
from weighbridge.judges.harm import (
    FEATURES_VERSION,
    MODEL_FILE,
    PAIR_FILE,
    TEXT_CHARS,
    HarmModel,
    Logistic,
    PairPart,
    classifier_input,
    gate,
    is_explicit_refusal,
    text_vectorizer,
)
from weighbridge.judges.metrics import load_validation_set
from weighbridge.judges.refusal import RefusalJudge

OUT = Path(__file__).resolve().parents[1] / "src/weighbridge/judges" / MODEL_FILE
PAIR_WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
C_EMBEDDING = (0.003, 0.01, 0.03, 0.1)
C_TEXT = (1.0, 3.0, 10.0, 30.0)
WEIGHTS = (0.0, 0.25, 0.4, 0.5, 0.6, 0.75, 1.0)
SEEDS = (0, 1, 2)
THRESHOLD = 0.5
Floats = npt.NDArray[np.float64]


def fit_embedding(x: Floats, y: npt.NDArray[np.bool_], c: float) -> Logistic:
    scaler = StandardScaler().fit(x)
    clf = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x), y)
    return Logistic(
        clf.coef_[0].astype(np.float32), float(clf.intercept_[0]), scaler.mean_.astype(np.float32),
        scaler.scale_.astype(np.float32),
    )  # fmt: skip


def fit_text(texts: list[str], y: npt.NDArray[np.bool_], c: float) -> tuple[TfidfVectorizer, Logistic]:
    vectorizer = text_vectorizer().fit(texts)
    clf = LogisticRegression(C=c, max_iter=5000).fit(vectorizer.transform(texts), y)
    return vectorizer, Logistic(clf.coef_[0].astype(np.float32), float(clf.intercept_[0]))


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
        if is_explicit_refusal(verdict) or gate(row.prompt, row.response) is not None:
            gated += 1
            gated_right += row.label != "unsafe"
            continue
        kept.append((row, verdict))
    prompts = sorted({r.prompt for r, _ in kept})
    prompt_vecs = dict(zip(prompts, embed(prompts), strict=True))
    x = np.stack([classifier_input(prompt_vecs[r.prompt], r.response, v)[0] for r, v in kept]).astype(np.float64)
    texts = [row.response[:TEXT_CHARS] for row, _ in kept]
    y = np.asarray([row.label == "unsafe" for row, _ in kept])

    # Out-of-fold probabilities of every setting of each model, then every blend of the two.
    right: dict[tuple[float, float, float], int] = dict.fromkeys(itertools.product(C_EMBEDDING, C_TEXT, WEIGHTS), 0)
    first_seed: dict[tuple[float, float, float], Floats] = {}
    for seed in SEEDS:
        p_emb = {c: np.zeros(len(y)) for c in C_EMBEDDING}
        p_text = {c: np.zeros(len(y)) for c in C_TEXT}
        for train, test in StratifiedKFold(n_splits=5, shuffle=True, random_state=seed).split(x, y):
            for c in C_EMBEDDING:
                fold = fit_embedding(x[train], y[train], c)
                p_emb[c][test] = [fold.probability(v.astype(np.float32)) for v in x[test]]
            for c in C_TEXT:
                vectorizer, text_model = fit_text([texts[i] for i in train], y[train], c)
                matrix = vectorizer.transform([texts[i] for i in test]).toarray()
                p_text[c][test] = [text_model.probability(v.astype(np.float32)) for v in matrix]
        for ce, ct, w in right:
            blend = w * p_emb[ce] + (1 - w) * p_text[ct]
            right[ce, ct, w] += int(((blend >= THRESHOLD) == y).sum())
            if seed == SEEDS[0]:
                first_seed[ce, ct, w] = blend
    cv = {k: (gated_right + v / len(SEEDS)) / len(rows) for k, v in right.items()}
    best = max(cv, key=lambda k: (round(cv[k], 6), k[2] == 0.5, -k[0], -k[1]))
    c_emb, c_text, weight = best

    # The cross-encoder's out-of-fold probabilities on the first seed's folds, then its weight.
    pair_prompts = [row.prompt for row, _ in kept]
    pair_responses = [row.response for row, _ in kept]
    settings = pair_classifier.TrainingSettings()
    p_pair = np.zeros(len(y))
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=SEEDS[0]).split(x, y))
    steps = sum(settings.steps(len(train)) for train, _ in folds) + settings.steps(len(y))
    with Progress() as progress:
        task = progress.add_task("cross-encoder: 5 folds, then all public rows", total=steps)

        def advance() -> None:
            progress.advance(task)

        for train, test in folds:
            fold_pair = pair_classifier.fit(
                [pair_prompts[i] for i in train], [pair_responses[i] for i in train], y[train], settings, advance
            )
            p_pair[test] = fold_pair.probabilities([pair_prompts[i] for i in test], [pair_responses[i] for i in test])
        final_pair = pair_classifier.fit(pair_prompts, pair_responses, y, settings, advance)
    pair_right = {a: int((((a * p_pair + (1 - a) * first_seed[best]) >= THRESHOLD) == y).sum()) for a in PAIR_WEIGHTS}
    pair_weight = max(PAIR_WEIGHTS, key=lambda a: (pair_right[a], -abs(a - 0.5)))
    first_seed_cv = {a: (gated_right + v) / len(rows) for a, v in pair_right.items()}
    pair_sha256 = final_pair.save(
        args.out.with_name(PAIR_FILE), {"trained_on": "judges/validation/harm.jsonl, split=public"}
    )

    vectorizer, text_model = fit_text(texts, y, c_text)
    model = HarmModel(
        features_version=FEATURES_VERSION,
        embedding=fit_embedding(x, y, c_emb),
        text=text_model,
        vectorizer=vectorizer,
        weight=weight,
        threshold=THRESHOLD,
        pair=PairPart(PAIR_FILE, pair_sha256, pair_weight),
        meta={
            "trained_on": "judges/validation/harm.jsonl, split=public",
            "public_rows": len(rows),
            "public_ids_sha256": hashlib.sha256("\n".join(sorted(r.id for r in rows)).encode()).hexdigest(),
            "decided_before_classifier": gated,
            "classifier_rows": len(y),
            "C_embedding": c_emb,
            "C_text": c_text,
            "cv": f"stratified 5-fold x seeds {list(SEEDS)}, accuracy over all public rows",
            "public_cv_accuracy": round(cv[best], 4),
            "public_cv_accuracy_embedding_only": round(max(v for k, v in cv.items() if k[2] == 1.0), 4),
            "public_cv_accuracy_text_only": round(max(v for k, v in cv.items() if k[2] == 0.0), 4),
            "pair_training": asdict(settings),
            "pair_cv": f"stratified 5-fold, seed {SEEDS[0]}, accuracy over all public rows, by pair weight",
            "public_cv_accuracy_by_pair_weight": {str(a): round(v, 4) for a, v in first_seed_cv.items()},
            "script": "scripts/train_harm_judge.py",
        },
    )
    args.out.write_text(json.dumps(model.to_json(), separators=(",", ":")) + "\n", encoding="utf-8")
    print(json.dumps(model.meta, indent=2))


if __name__ == "__main__":
    main()
