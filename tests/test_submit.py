"""`weighbridge submit` as the issue states it: three kinds of input, manifests that match
`sha256sum`, the hostile file flagged and never executed, and everything recorded."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file

from tests.conftest import WEIGHBRIDGE
from tests.hostile_corpus import build_corpus


def wb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WEIGHBRIDGE, *args], capture_output=True, text=True, timeout=300)


def sha256sum(path: Path) -> str:
    return subprocess.run(["sha256sum", str(path)], capture_output=True, text=True, check=True).stdout.split()[0]


def submitted(db: Path, proc: subprocess.CompletedProcess[str]) -> tuple[str, list[dict[str, object]]]:
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"^Submission ([0-9a-f-]{36}) ", proc.stdout, re.MULTILINE)
    assert match, proc.stdout
    with sqlite3.connect(db) as conn:
        (manifest,) = conn.execute("SELECT manifest_json FROM submissions WHERE id = ?", (match.group(1),)).fetchone()
    return match.group(1), json.loads(manifest)


def test_submit_three_kinds_of_input(tmp_path: Path, default_model_path: Path) -> None:
    db = tmp_path / "s.db"
    dbarg = ["--db", f"sqlite:///{db}"]

    # 1. The default model (GGUF), with documents handed in beside it.
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "safety-case.md").write_text("# Safety case\nRed-teamed for 40 hours.\n")
    sub_id, manifest = submitted(db, wb("submit", str(default_model_path), "--docs", str(docs), *dbarg))
    size = default_model_path.stat().st_size
    assert manifest == [{"path": default_model_path.name, "sha256": sha256sum(default_model_path), "bytes": size}]
    with sqlite3.connect(db) as conn:
        doc = docs / "safety-case.md"
        assert conn.execute(
            "SELECT path, sha256, bytes FROM documents WHERE submission_id = ?", (sub_id,)
        ).fetchall() == [("safety-case.md", sha256sum(doc), doc.stat().st_size)]
        assert conn.execute("SELECT COUNT(*) FROM custody_objects WHERE submission_id = ?", (sub_id,)).fetchone() == (
            1,
        )

    # The quick path's local custody key (created at submit) also unlocks custody for verification.
    verify = wb("custody", "verify", sub_id[:8], *dbarg)
    assert verify.returncode == 0 and "intact" in verify.stdout, verify.stderr

    # 2. A small safetensors model built here.
    st = tmp_path / "tiny.safetensors"
    save_file({"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.zeros(4, dtype=np.float32)}, str(st))
    proc = wb("submit", str(st), *dbarg)
    _, manifest = submitted(db, proc)
    assert [(m["path"], m["sha256"]) for m in manifest] == [("tiny.safetensors", sha256sum(st))]
    assert "safetensors" in proc.stdout

    # 3. A directory with a hostile pickle beside a config: flagged, never executed.
    model_dir = tmp_path / "hostile-model"
    model_dir.mkdir()
    markers = tmp_path / "markers"
    markers.mkdir()
    corpus = build_corpus(tmp_path / "corpus", markers)
    hostile = next(c for c in corpus if c.hostile and c.path.suffix in (".bin", ".pt", ".pkl"))
    (model_dir / "pytorch_model.bin").write_bytes(hostile.path.read_bytes())
    (model_dir / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    proc = wb("submit", str(model_dir), *dbarg)
    dir_id, manifest = submitted(db, proc)
    assert {m["path"]: m["sha256"] for m in manifest} == {
        "config.json": sha256sum(model_dir / "config.json"),
        "pytorch_model.bin": sha256sum(model_dir / "pytorch_model.bin"),
    }
    with sqlite3.connect(db) as conn:
        severities = conn.execute(
            "SELECT severity FROM findings WHERE submission_id = ? AND file LIKE '%pytorch_model.bin%'", (dir_id,)
        ).fetchall()
    assert {"high", "critical"} & {s for (s,) in severities}
    assert not any(markers.iterdir()), "scanning must never execute the pickle"


def test_submit_bad_inputs_write_nothing(tmp_path: Path, isolated_home: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    proc = wb("submit", str(text))
    assert proc.returncode == 1 and "not a model file" in proc.stderr
    proc = wb("submit", str(tmp_path / "missing.gguf"))
    assert proc.returncode == 1 and "No such file" in proc.stderr
    assert not isolated_home.exists()
