"""The pickle scanner flags every hostile file in the corpus, runs none of them, and passes benign ones."""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.hostile_corpus import LOADER_SCRIPT, CorpusFile, build_corpus
from weighbridge.inspection.formats import detect_format
from weighbridge.inspection.inspect import inspect_path
from weighbridge.inspection.pickle_scan import classify, scan_bytes, scan_pickle_stream

SERIOUS = ("critical", "high")


@pytest.fixture
def corpus(tmp_path: Path) -> list[CorpusFile]:
    return build_corpus(tmp_path / "corpus", tmp_path / "markers")


def test_corpus_is_really_hostile(tmp_path: Path) -> None:
    """Loading each hostile file (in a throw-away subprocess) creates its marker: the payloads work."""
    files = build_corpus(tmp_path / "proof", tmp_path / "proof_markers")
    hostile = [f for f in files if f.hostile]
    assert len(hostile) >= 10
    args = [a for f in hostile for a in (f.loader, str(f.path))]
    subprocess.run([sys.executable, "-c", LOADER_SCRIPT, *args], check=False, timeout=120)
    # os.system / Popen may finish a moment after the loader returns.
    deadline = time.monotonic() + 10
    while not all(f.marker and f.marker.exists() for f in hostile) and time.monotonic() < deadline:
        time.sleep(0.05)
    for f in hostile:
        assert f.marker is not None and f.marker.exists(), f"{f.name} did not run its payload when loaded"


def test_every_hostile_file_is_flagged_and_none_runs(corpus: list[CorpusFile], tmp_path: Path) -> None:
    hostile = [f for f in corpus if f.hostile]
    for f in hostile:
        result = inspect_path(f.path)
        serious = [x for x in result.findings if x.severity in SERIOUS and x.kind.startswith(("pickle.", "numpy."))]
        assert serious, f"{f.name} ({f.what}) was not flagged: {result.findings}"
    assert not any((tmp_path / "markers").iterdir()), "scanning executed a payload"


def test_benign_files_are_not_flagged(corpus: list[CorpusFile]) -> None:
    for f in corpus:
        if f.hostile:
            continue
        result = inspect_path(f.path)
        assert not [x for x in result.findings if x.severity in SERIOUS], (f.name, result.findings)
        assert not [x for x in result.findings if x.kind.startswith("pickle.")], (f.name, result.findings)


def test_corpus_directory_in_one_pass(corpus: list[CorpusFile], tmp_path: Path) -> None:
    result = inspect_path(tmp_path / "corpus")
    flagged = {x.file for x in result.findings if x.severity in SERIOUS}
    assert flagged == {f.name for f in corpus if f.hostile}
    assert {f.path: f.format for f in result.files}["tokenizer.json"] == "pickle"  # the bytes decide, not the name
    assert not any((tmp_path / "markers").iterdir())


def test_stack_global_through_memo_is_resolved(corpus: list[CorpusFile]) -> None:
    f = next(f for f in corpus if f.name == "stack_global_memo.pkl")
    findings = scan_bytes(f.path.read_bytes(), f.name)
    assert [(x.severity, x.evidence) for x in findings] == [("critical", "STACK_GLOBAL os system")]


def test_zip_locations_name_the_member(corpus: list[CorpusFile]) -> None:
    nested = next(f for f in corpus if f.name == "nested_zip.zip")
    locations = [x.location for x in inspect_path(nested.path).findings if x.severity == "critical"]
    assert locations and all(loc and loc.startswith("checkpoints/inner.pt!inner/data.pkl:byte") for loc in locations)


def test_unresolvable_stack_global_is_high() -> None:
    # The module name is the result of a call, so no scanner can know it without running the pickle.
    data = b"\x80\x04" + b"\x8c\x08builtins\x8c\x03str\x93)R" + b"\x8c\x06system\x93)R."
    findings = scan_bytes(data, "x.pkl")
    assert "pickle.unresolved_global" in {x.kind for x in findings}


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x80",
        b"\x80\x05\x95",
        pickle.dumps({"a": 1})[:-1],
        b"\x80\x04\x8e" + b"\xff" * 8,  # BINBYTES8 declaring 2**64-1 bytes
        b"cos\nsys",  # protocol 0 GLOBAL without its second newline
        b"\xff\xfe\xfd",
    ],
)
def test_malformed_pickles_are_findings_not_crashes(data: bytes) -> None:
    findings = scan_bytes(data, "broken.pkl")
    assert any(x.kind == "pickle.malformed" for x in findings) or data == b""


def test_truncated_hostile_pickle_still_reports_its_import() -> None:
    data = pickle.dumps(len, protocol=4)[:-1]  # whatever follows the GLOBAL, the import already happened
    scan = scan_pickle_stream(io.BytesIO(data))
    assert scan.error is not None
    assert [g.qualified for g in scan.globals] == ["builtins.len"]


@pytest.mark.parametrize(
    ("module", "name", "severity"),
    [
        ("os", "system", "critical"),
        ("posix", "system", "critical"),
        ("nt", "system", "critical"),
        ("os.path", "join", "critical"),
        ("subprocess", "check_output", "critical"),
        ("builtins", "eval", "critical"),
        ("__builtin__", "getattr", "critical"),
        ("builtins", "len", "high"),
        ("socket", "create_connection", "critical"),
        ("requests.api", "get", "high"),
        ("urllib.request", "urlopen", "high"),
        ("webbrowser", "open", "high"),
        ("torch", "load", "critical"),
        ("mypackage.layers", "Custom", "medium"),
        ("torch._utils", "_rebuild_tensor_v2", None),
        ("torch", "BFloat16Storage", None),
        ("collections", "OrderedDict", None),
        ("numpy.core.multiarray", "_reconstruct", None),
        ("builtins", "set", None),
    ],
)
def test_classification(module: str, name: str, severity: str | None) -> None:
    assert classify(module, name) == severity


def test_format_detection(corpus: list[CorpusFile]) -> None:
    formats = {f.name: detect_format(f.path) for f in corpus}
    assert formats["torch_zip.pt"] == "pytorch-zip"
    assert formats["nested_zip.zip"] == "zip"
    assert formats["proto0_text.pkl"] == "pickle"
    assert formats["object_array.npy"] == "numpy"
    assert formats["legacy_torch.bin"] == "pickle"
