"""Detection of weighbridge's pickle scanner versus modelscan on the test corpus.

Builds the hostile + benign corpus of `tests/hostile_corpus.py` in a temporary directory, scans each
file with `weighbridge.inspection.inspect_path` (detected = a high/critical finding) and with the
`modelscan` CLI (detected = any issue reported), and prints one row per file, then
`detected: weighbridge N/M, modelscan K/M` (M = hostile files) as the last line.

modelscan pins its own dependency versions, so keep it in a separate environment:

    python3 -m venv /tmp/modelscan-venv && /tmp/modelscan-venv/bin/pip install modelscan==0.8.8 "numpy<2"

("numpy<2": with numpy 2.x, modelscan 0.8.8 fails on every .npy with "numpy.lib.format has no
attribute _check_version" and reports no issue.) Then:

    python benchmarks/pickle_scan_vs_modelscan.py [--modelscan /tmp/modelscan-venv/bin/modelscan]

Nothing in the corpus is loaded; both tools read opcodes only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.hostile_corpus import build_corpus  # noqa: E402

from weighbridge.inspection.inspect import inspect_path  # noqa: E402

DEFAULT_MODELSCAN = Path("/tmp/modelscan-venv/bin/modelscan")


def find_modelscan(given: str | None) -> str:
    candidates = [given, os.environ.get("MODELSCAN"), shutil.which("modelscan"), str(DEFAULT_MODELSCAN)]
    for c in candidates:
        if c and Path(c).is_file():
            return c
    sys.exit(
        "modelscan not found. Install it in its own venv:\n"
        "  python3 -m venv /tmp/modelscan-venv && /tmp/modelscan-venv/bin/pip install modelscan==0.8.8 'numpy<2'\n"
        "then pass --modelscan /tmp/modelscan-venv/bin/modelscan (or set MODELSCAN)."
    )


def modelscan_detects(exe: str, path: Path, report: Path) -> tuple[bool, str]:
    report.unlink(missing_ok=True)
    subprocess.run([exe, "scan", "-p", str(path), "-r", "json", "-o", str(report)], capture_output=True, timeout=300)
    if not report.is_file():
        return False, "no report"
    data = json.loads(report.read_text())
    issues = data.get("issues", [])
    errors = data.get("errors", [])
    skipped = data.get("summary", {}).get("skipped", {}).get("total_skipped", 0)
    note = ", ".join(sorted({f"{i['module']}.{i['operator']} {i['severity']}" for i in issues}))
    if not issues and (errors or skipped):
        note = f"{len(errors)} error(s), {skipped} skipped"
    return bool(issues), note or "-"


def weighbridge_detects(path: Path) -> tuple[bool, str]:
    findings = [f for f in inspect_path(path).findings if f.severity in ("high", "critical")]
    return bool(findings), ", ".join(sorted({f"{f.evidence or f.kind} {f.severity}" for f in findings}))[:70] or "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modelscan", help="path of the modelscan executable")
    args = parser.parse_args()
    exe = find_modelscan(args.modelscan)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        corpus = build_corpus(root / "corpus", root / "markers")
        rows = []
        t_wb = t_ms = 0.0
        for f in corpus:
            t0 = time.perf_counter()
            wb, wb_note = weighbridge_detects(f.path)
            t1 = time.perf_counter()
            ms, ms_note = modelscan_detects(exe, f.path, root / "report.json")
            t_ms += time.perf_counter() - t1
            t_wb += t1 - t0
            rows.append((f, wb, ms, wb_note, ms_note))
        executed = sorted(p.name for p in (root / "markers").iterdir())
    print(f"{'file':24} {'hostile':7} {'weighbridge':11} {'modelscan':9}  what / modelscan says")
    for f, wb, ms, _wb_note, ms_note in rows:
        print(f"{f.name:24} {'yes' if f.hostile else 'no':7} {'FLAG' if wb else '-':11} {'FLAG' if ms else '-':9}"
              f"  {f.what} / {ms_note}")  # fmt: skip
    hostile = [r for r in rows if r[0].hostile]
    benign = [r for r in rows if not r[0].hostile]
    print(f"false positives on {len(benign)} benign files: weighbridge {sum(r[1] for r in benign)}, "
          f"modelscan {sum(r[2] for r in benign)}")  # fmt: skip
    print(f"time: weighbridge {t_wb:.2f}s in process, modelscan {t_ms:.2f}s (one CLI process per file)")
    print(f"payloads executed while scanning: {executed or 'none'}")
    print(
        f"detected: weighbridge {sum(r[1] for r in hostile)}/{len(hostile)}, "
        f"modelscan {sum(r[2] for r in hostile)}/{len(hostile)}"
    )


if __name__ == "__main__":
    main()
