"""Measure the default judges' report figures once and ship them with the package.

A report shows each judge's agreement with human labels (`services.review.judge_info`). Measuring
the harm judge's takes about 40 s, once per machine; a released judge's figures never change for
the same version and labelled set, so they are measured here, in a fresh home so no cached file is
read, and written to `src/weighbridge/judges/validation/figures/` under a name that carries the
version and the set's digest. Run it when a judge version or a validation set changes (a test
fails until the file for the installed version exists).

Usage: .venv/bin/python scripts/record_judge_figures.py
"""

from __future__ import annotations

import json
import os
import tempfile
from importlib.resources import files
from pathlib import Path

FIGURES = Path(__file__).resolve().parent.parent / "src" / "weighbridge" / "judges" / "validation" / "figures"


def main() -> None:
    os.environ["WEIGHBRIDGE_HOME"] = tempfile.mkdtemp(prefix="judge-figures-")
    from weighbridge.judges.registry import DEFAULT_JUDGES, get_judge
    from weighbridge.judges.validate import EVALUATION_ONLY
    from weighbridge.services import review

    FIGURES.mkdir(parents=True, exist_ok=True)
    for name in DEFAULT_JUDGES:
        judge = get_judge(name)
        data_set = EVALUATION_ONLY if judge.validation_set == "stance" else judge.validation_set
        text = files("weighbridge.judges").joinpath("validation", f"{data_set}.jsonl").read_bytes()
        target = FIGURES / review.figures_file_name(name, judge.version, text)
        if target.exists():
            target.unlink()  # measure afresh, never read back the file being replaced
        info = review.judge_info(name, judge.version)
        target.write_text(json.dumps(info.validation, sort_keys=True), "utf-8")
        print(f"{name} {judge.version}: {target.name}")


if __name__ == "__main__":
    main()
