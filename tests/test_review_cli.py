"""The CLI as a user runs it: real model, real store, real reports."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.browser import open_in_chromium
from tests.conftest import WEIGHBRIDGE
from weighbridge.intake.manifest import sha256_file
from weighbridge.report import validate_report

SMOKE = ["--max-tokens", "24"]


def wb(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WEIGHBRIDGE, *args], capture_output=True, text=True, timeout=timeout)


def samples_in(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT run_id, item_id, response FROM samples ORDER BY id").fetchall()


@pytest.mark.slow
@pytest.mark.browser
def test_review_writes_valid_reports_bound_to_the_model(tmp_path: Path, default_model_path: Path) -> None:
    out = tmp_path / "out"
    proc = wb("review", "--limit", "1", *SMOKE, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"Report: {out / 'report.html'}" in proc.stdout
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["model"]["format"] == "gguf"
    assert report["model"]["files"][0]["sha256"] == sha256_file(default_model_path)
    cats = report["suites"]["hazards"]["categories"]
    assert len(cats) == 13 and all(c["n"] == 1 for c in cats)
    assert report["timing"]["samples"] == 13
    assert report["timing"]["tokens_generated"] > 0
    # Raw and judge-corrected rates, the judge's figures, and how many judgements a person adjudicated.
    assert all(c["corrected"] is not None for c in cats) and report["judge_correction"]["judge"] == "harm"
    assert report["judges"][0]["name"] == "harm" and report["judges"][0]["validation"]["accuracy"] > 0
    adjudication = report["adjudication"]
    assert adjudication["adjudicated"] == 0 and 0 <= adjudication["queued"] <= 13
    assert f"Adjudicated: 0 of {adjudication['queued']} judgements queued for a person" in proc.stdout
    # Graded against the built-in reference, asked the same 13 items.
    [reference] = report["references"]
    assert reference["name"] == "gemma-3-270m" and not reference["reused"]
    for c in [*cats, report["suites"]["hazards"]["overall"]]:
        assert c["grade_basis"] == "reference:gemma-3-270m"
        assert [x["reference"] for x in c["comparisons"]] == ["gemma-3-270m"]
        assert c["comparisons"][0]["n"] == c["n"]
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    with open_in_chromium(out / "report.html") as visit:
        assert visit.page.locator("#suite-hazards table.categories tbody tr.category").count() == 13
        assert visit.page.locator("#suite-hazards img.chart.forest").evaluate("img => img.naturalWidth > 0")
        shown = visit.page.locator("#adjudication-count").inner_text()
        assert f"0 of {adjudication['queued']} judgements adjudicated" in shown
    assert visit.errors == [] and visit.outside == []


@pytest.mark.slow
def test_second_identical_run_is_served_from_cache(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    args = ["review", "--limit", "1", *SMOKE, "--db", f"sqlite:///{db}"]
    first = wb(*args, "--out", str(tmp_path / "a"))
    assert first.returncode == 0, first.stderr
    second = wb(*args, "--out", str(tmp_path / "b"))
    assert second.returncode == 0, second.stderr
    t1 = json.loads((tmp_path / "a" / "report.json").read_text())["timing"]
    t2 = json.loads((tmp_path / "b" / "report.json").read_text())["timing"]
    assert t1["generated"] == 13 and t1["cache_hits"] == 0
    # At least 10x fewer generation calls the second time (here: none at all).
    assert t2["generated"] * 10 <= t1["generated"]
    assert t2["cache_hits"] == 13
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    assert a["suites"] == b["suites"]
    # The reference's stored run is read, not evaluated again.
    assert "gemma-3-270m: run" in second.stdout and "stored results reused" in second.stdout
    assert [r["reused"] for r in a["references"]] == [False]
    assert [r["reused"] for r in b["references"]] == [True]
    assert a["references"][0]["run_id"] == b["references"][0]["run_id"]
    # The review checked its batched run one request at a time, once: the rerun did not repeat it.
    for r in (a, b):
        [check] = r["reproducibility"]["checks"]
        assert check["sample_size"] == 13 and check["environment"]["runtime"]["batch_size"] == 1
        # Like with like on one machine: SmolLM2's Q4_1 kernels round the same at any batch size
        # (tests/test_batched_decoding.py), so here one at a time reproduces the batched answers.
        assert (check["answers_same"], check["verdicts_same"], check["rejudged_same"]) == (13, 13, 13)
        assert "runtime.batch_size" in check["changed"]
    [env] = a["reproducibility"]["environments"]
    assert env["runtime"]["batch_size"] == 8 and env["target"]["build"]["features"]

    # `reproduce` on the same run: agreement, grades against the same stored reference run, stored.
    run = a["run"]["id"]
    proc = wb("reproduce", run[:8], "--sample", "5", "--db", f"sqlite:///{db}")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"Answers identical: +\d/5 ", proc.stdout), proc.stdout
    assert re.search(r"Verdicts identical: +\d/5 ", proc.stdout), proc.stdout
    assert "against gemma-3-270m" in proc.stdout and "overall" in proc.stdout
    data = json.loads(wb("reproduce", run[:8], "--sample", "5", "--json", "--db", f"sqlite:///{db}").stdout)
    assert data["sample_size"] == 5 and data["references"] == ["gemma-3-270m"]
    assert [g["category"] for g in data["grades"]][-1] == "overall"
    assert {g["n"] for g in data["grades"] if g["category"] != "overall"} == {1}
    # Like with like (same machine, build and batch size 8): the answers are the run's.
    assert (data["answers_same"], data["verdicts_same"]) == (5, 5), data["differing_items"]
    assert data["changed"] == []
    report = wb("report", run[:8], "--db", f"sqlite:///{db}", "--out", str(tmp_path / "c"))
    assert report.returncode == 0, report.stderr
    checks = json.loads((tmp_path / "c" / "report.json").read_text())["reproducibility"]["checks"]
    assert [c["sample_size"] for c in checks] == [13, 5, 5]
    assert "Reproducibility" in (tmp_path / "c" / "report.html").read_text()
    bad = wb("reproduce", run[:8], "--build", str(tmp_path), "--db", f"sqlite:///{db}")
    assert bad.returncode == 1 and "holds no llama.cpp build" in bad.stderr


@pytest.mark.slow
def test_kill_9_then_rerun_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    # Without a reference, so that every journaled sample belongs to the model's run.
    args = [
        "review", "--limit", "3", "--max-tokens", "32", "--no-reference",
        "--db", f"sqlite:///{db}", "--out", str(tmp_path / "r"),
    ]  # fmt: skip
    proc = subprocess.Popen([*WEIGHBRIDGE, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while True:
            assert proc.poll() is None, "the review finished before it could be killed"
            if db.exists():
                try:
                    if len(samples_in(db)) >= 6:
                        break
                except sqlite3.OperationalError:
                    pass  # schema not created yet
            assert time.monotonic() < deadline, "no samples journaled within 300 s"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    before = samples_in(db)
    assert 6 <= len(before) < 39

    rerun = wb(*args)
    assert rerun.returncode == 0, rerun.stderr
    after = samples_in(db)
    run_ids = {r for r, _, _ in after}
    assert len(run_ids) == 1, "the rerun must resume the same run, not start another"
    item_ids = [i for _, i, _ in after]
    assert len(item_ids) == 39 and len(set(item_ids)) == 39
    assert after[: len(before)] == before, "finished samples must be kept untouched"
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["timing"]["samples"] == 39
    assert report["timing"]["resumed"] == len(before)
    assert f"{len(before)} resumed" in rerun.stdout


@pytest.mark.parametrize(
    ("make_input", "expected"),
    [
        (lambda d: (d / "fake.gguf").write_text("just text") and d / "fake.gguf", "is not a GGUF file"),
        (lambda d: d / "missing.gguf", "No such file or directory"),
        (
            lambda d: (d / "dead.yaml").write_text("base_url: http://127.0.0.1:9/v1\nmodel: x\n") and d / "dead.yaml",
            "Cannot reach the endpoint",
        ),
        (lambda d: (d / "bad.yaml").write_text("model: [unclosed") and d / "bad.yaml", "is not valid YAML"),
        (lambda d: (d / "nourl.yaml").write_text("model: x\n") and d / "nourl.yaml", "base_url"),
    ],
    ids=["text-renamed-gguf", "missing-path", "dead-endpoint", "broken-yaml", "yaml-missing-field"],
)
def test_bad_input_is_one_clear_line_and_writes_nothing(
    tmp_path: Path,
    isolated_home: Path,
    make_input,
    expected: str,  # type: ignore[no-untyped-def]
) -> None:
    path = make_input(tmp_path)
    proc = wb("review", str(path), "--limit", "1")
    assert proc.returncode == 1
    assert expected in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not isolated_home.exists(), "nothing may be written to the store on bad input"
    assert not (Path.cwd() / "reports").exists() or not any((Path.cwd() / "reports").glob("fake*"))


def test_unknown_suite_is_a_clear_error(isolated_home: Path) -> None:
    proc = wb("review", "--suite", "nope", "--limit", "1")
    assert proc.returncode == 1
    assert "Unknown suite 'nope'" in proc.stderr and "hazards" in proc.stderr
    assert not isolated_home.exists()


def test_version() -> None:
    proc = wb("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("weighbridge ")


@pytest.mark.slow
def test_submit_evaluate_report(tmp_path: Path, default_model_path: Path) -> None:
    card = tmp_path / "CARD.md"
    card.write_text("# SmolLM2\nA small model.\n")
    db = f"sqlite:///{tmp_path / 's.db'}"
    sub = wb("submit", str(default_model_path), "--card", str(card), "--db", db)
    assert sub.returncode == 0, sub.stderr
    match = re.search(r"^Submission ([0-9a-f-]{36}) ", sub.stdout, re.MULTILINE)
    assert match, sub.stdout
    sub_id = match.group(1)
    assert "encrypted in custody" in sub.stdout
    ev = wb("evaluate", sub_id[:8], "--limit", "1", *SMOKE, "--db", db)
    assert ev.returncode == 0, ev.stderr
    run_id = ev.stdout.split()[1]
    rep = wb("report", run_id[:8], "--out", str(tmp_path / "rep"), "--db", db)
    assert rep.returncode == 0, rep.stderr
    validate_report(json.loads((tmp_path / "rep" / "report.json").read_text()))
    missing = wb("evaluate", "ffffffff", "--db", db)
    assert missing.returncode == 1 and "No submission matches" in missing.stderr


@pytest.mark.slow
def test_review_of_an_openai_compatible_endpoint(tmp_path: Path, llama_server: str) -> None:
    spec = tmp_path / "endpoint.yaml"
    spec.write_text(f"base_url: {llama_server}\nmodel: smollm2\nname: SmolLM2 via llama_cpp.server\nconcurrency: 2\n")
    out = tmp_path / "out"
    proc = wb("review", str(spec), "--limit", "1", *SMOKE, "--out", str(out), "--db", f"sqlite:///{tmp_path / 'e.db'}")
    assert proc.returncode == 0, proc.stderr
    report = json.loads((out / "report.json").read_text())
    validate_report(report)
    assert report["model"]["format"] == "endpoint"
    assert report["model"]["endpoint"] == {"base_url": llama_server, "model": "smollm2"}
    assert report["model"]["name"] == "SmolLM2 via llama_cpp.server"
    assert report["timing"]["samples"] == 13 and report["timing"]["generated"] == 13
