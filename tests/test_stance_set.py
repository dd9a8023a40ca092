"""The stance set: two ratings per row, disagreements decided, splits by prompt, kept apart from the
hazard suite, and a final test set that still hashes to the digest recorded before scoring."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

from weighbridge.judges import stance_set
from weighbridge.judges.scores import recorded_score
from weighbridge.suites.hazards import HAZARD_CATEGORIES, load_hazard_suite

STYLES = {
    "refusal", "redirect", "protective_info", "helpful", "over_refusal", "disclaimer_then_comply", "schematic",
    "endorse", "persona", "non_english", "terse", "late_harm", "nonsense",
    "artifact", "misinformation", "correction", "fiction_safe", "near_miss",
}  # fmt: skip


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9']+", text.lower()))


def test_every_row_is_rated_twice_and_every_disagreement_is_decided() -> None:
    written = stance_set.written_rows()
    ratings = stance_set.second_ratings()
    assert len(written) >= 3000 and set(ratings) == {r["id"] for r in written}
    rows = stance_set.final_rows()  # raises on an undecided disagreement
    decided = stance_set.adjudications()
    for r in written:
        for field in ("label", "complied"):
            if r[field] != ratings[r["id"]][field]:
                assert (r["id"], field) in decided
    assert sum(r.adjudicated for r in rows) == len({i for i, _ in decided})
    label, complied = stance_set.agreement("label"), stance_set.agreement("complied")
    assert label.n == complied.n == len(rows) and 0.0 <= complied.kappa <= label.kappa <= 1.0


def test_rows_cover_every_category_style_and_stay_schematic() -> None:
    rows = stance_set.final_rows()
    categories = {c.id for c in HAZARD_CATEGORIES}
    assert {r.category for r in rows} == categories | {"benign"}
    assert {r.style for r in rows} == STYLES
    assert len({r.lang for r in rows}) >= 5
    for category in categories:
        unsafe = [r for r in rows if r.category == category and r.unsafe]
        assert len(unsafe) >= 100, category
    # Harmful answers are written schematic (placeholders, no uplift): the row says so.
    written = {r["id"]: r for r in stance_set.written_rows()}
    assert all(written[r.id]["schematic"] for r in rows if r.unsafe)


def test_splits_are_by_prompt_and_the_test_set_is_the_recorded_one() -> None:
    recorded = stance_set.test_set()
    test = stance_set.checked_test_rows()  # raises if the rows no longer hash to the recorded digest
    test_prompts = set(recorded["prompt_ids"])
    train = [r for r in stance_set.final_rows() if r.prompt_id not in test_prompts]
    assert len(test) == recorded["rows"] and train
    assert not {r.prompt_id for r in test} & {r.prompt_id for r in train}
    assert not {r.prompt.strip().lower() for r in test} & {r.prompt.strip().lower() for r in train}
    # Nor a near paraphrase: no training request shares most of its words with a test request.
    test_words = [words(p) for p in {r.prompt for r in test}]
    for prompt in {r.prompt for r in train}:
        mine = words(prompt)
        assert all(len(mine & t) / len(mine | t) < 0.4 for t in test_words), prompt
    unsafe_by_category = Counter(r.category for r in test if r.unsafe)
    assert all(unsafe_by_category[c.id] >= 15 for c in HAZARD_CATEGORIES), unsafe_by_category
    folds: dict[str, set[int]] = defaultdict(set)
    for r in train:
        folds[r.prompt_id].add(stance_set.fold_of(r.prompt_id))
    assert all(len(f) == 1 for f in folds.values()) and len({f for s in folds.values() for f in s}) == 5


def test_no_hazard_suite_item_appears_in_the_judge_data() -> None:
    suite = load_hazard_suite()
    suite_texts = {" ".join(i.prompt.lower().split()) for i in suite.items}
    suite_words = [words(i.prompt) for i in suite.items]
    for prompt in {r.prompt for r in stance_set.final_rows()}:
        assert " ".join(prompt.lower().split()) not in suite_texts, prompt
        mine = words(prompt)
        for theirs in suite_words:
            overlap = len(mine & theirs) / max(1, len(mine | theirs))
            assert overlap < 0.6, (prompt, overlap)


def test_the_shipped_judge_was_scored_on_the_recorded_test_set() -> None:
    from weighbridge.judges.harm import HarmJudge

    judge = HarmJudge()
    score = recorded_score(judge.name, judge.version)
    assert score is not None, "score the released judge once: weighbridge judges score --judge harm"
    assert score["test_set"]["digest"] == stance_set.test_set()["digest"]
    assert score["overall"]["n"] == stance_set.test_set()["rows"]
    for key in ("accuracy", "precision", "recall", "f1", "cohen_kappa"):
        interval = score["overall"]["intervals"][key]
        assert interval["low"] <= score["overall"][key] <= interval["high"]
