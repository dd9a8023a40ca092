"""What a run's answers depend on (build, host, threads, batch size) and `reproduce`'s comparison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from weighbridge.domain import ChatMessage, ChatRequest, GenerationParams
from weighbridge.errors import WeighbridgeError
from weighbridge.runner.environment import differences, parse_cpuinfo
from weighbridge.services.reproduce import check_comparable, pick_sample, shifted_grades
from weighbridge.targets.llamacpp import LlamaCppTarget
from weighbridge.targets.llamacpp_build import current_build, parse_features, read_marker

SYSTEM_INFO = (
    "CPU : SSE3 = 1 | SSSE3 = 1 | AVX = 1 | AVX2 = 1 | F16C = 1 | FMA = 1 | BMI2 = 1 | AVX512 = 0 | "
    "LLAMAFILE = 1 | OPENMP = 1 | REPACK = 1 | CPU : AVX2 = 1 |"
)


def test_features_are_the_ones_set_to_one_in_order_once() -> None:
    assert parse_features(SYSTEM_INFO) == (
        "SSE3", "SSSE3", "AVX", "AVX2", "F16C", "FMA", "BMI2", "LLAMAFILE", "OPENMP", "REPACK"
    )  # fmt: skip
    assert parse_features("") == ()


def test_marker_missing_or_broken_reads_as_unmarked(tmp_path: Path) -> None:
    assert read_marker(tmp_path) == ("unmarked", "")
    (tmp_path / "weighbridge_build.json").write_text("{not json")
    assert read_marker(tmp_path) == ("unmarked", "")
    (tmp_path / "weighbridge_build.json").write_text(json.dumps({"variant": "portable", "cmake_args": "-DX=OFF"}))
    assert read_marker(tmp_path) == ("portable", "-DX=OFF")


def test_the_installed_build_is_marked_and_enters_the_run_identity(llama_target: Any) -> None:
    build = current_build()
    # scripts/setup.sh builds through scripts/build-llama.sh, which marks the variant it made.
    assert build.variant in ("portable", "native", "baseline"), build
    assert build.features, build  # read from llama.cpp itself, whatever made the build
    assert llama_target.describe()["build"] == build.identity()
    assert llama_target.runtime()["build"]["location"] == build.location


def test_cpuinfo_gives_the_model_and_only_the_flags_that_pick_kernels() -> None:
    text = (
        "processor\t: 0\nmodel name\t: AMD EPYC 9R14\nflags\t\t: fpu sse4_2 avx avx2 fma avx512f avx512_vnni "
        "avx512_bf16 sha_ni\n\nprocessor\t: 1\nmodel name\t: other\nflags\t\t: fpu\n"
    )
    assert parse_cpuinfo(text) == {
        "cpu": "AMD EPYC 9R14",
        "isa": ["sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16"],
    }


def test_differences_name_nested_paths() -> None:
    a = {"target": {"build": {"features": "AVX2"}, "batch_size": 8}, "seed": 0}
    b = {"target": {"build": {"features": "AVX2 AVX512"}}, "seed": 0, "host": {"cpu": "x"}}
    assert differences(a, b) == ["host", "target.batch_size", "target.build.features"]
    assert differences(a, a) == []


def test_sample_is_reproducible_ordered_and_bounded() -> None:
    ids = [f"i{n}" for n in range(100)]
    a = pick_sample(ids, 10, "run-1")
    assert a == pick_sample(ids, 10, "run-1") and len(a) == 10
    assert a == sorted(a, key=ids.index)
    assert a != pick_sample(ids, 10, "run-2")
    assert pick_sample(ids, 0, "x") == ids and pick_sample(ids, 500, "x") == ids


def test_shifted_grades_replace_only_the_sampled_verdicts() -> None:
    categories = {f"a{i}": "vcr" for i in range(40)} | {f"b{i}": "hte" for i in range(40)}
    before = {item: False for item in categories}
    ref = [("ref", {"vcr": (20, 40), "hte": (20, 40)})]
    # Five new unsafe verdicts in one category: its counts move and only its grade (and overall) can.
    after = {f"a{i}": True for i in range(5)}
    shifts = {g.category: g for g in shifted_grades(before, after, categories, ref)}
    assert (shifts["vcr"].unsafe_before, shifts["vcr"].unsafe_after, shifts["vcr"].n) == (0, 5, 40)
    assert (shifts["hte"].unsafe_before, shifts["hte"].unsafe_after) == (0, 0)
    assert (shifts["overall"].unsafe_before, shifts["overall"].unsafe_after, shifts["overall"].n) == (0, 5, 80)
    assert shifts["vcr"].moved and not shifts["hte"].moved
    assert (shifts["vcr"].grade_before, shifts["vcr"].grade_after) == ("Very Good", "Good")
    # Nothing changed: nothing moves.
    assert not any(g.moved for g in shifted_grades(before, {"a1": False}, categories, ref))


def test_a_reproduction_may_change_build_and_batch_size_only() -> None:
    run = {"adapter": "llamacpp", "model": "m.gguf", "chat_template": "gguf", "build": {"features": "AVX2"}}
    check_comparable(run, {**run, "build": {"features": "AVX2 AVX512"}, "batch_size": 8})
    with pytest.raises(WeighbridgeError, match=r"not be asked the same way .*chat_template"):
        check_comparable(run, {**run, "chat_template": "sha256:abc"})


@pytest.mark.slow
def test_thread_count_does_not_change_answers(default_model_path: Path) -> None:
    """Why threads are recorded with a run but left out of its identity: each output of llama.cpp's
    CPU matrix products is summed by one thread, so 1 and 2 threads compute the same numbers."""
    asks = [
        ChatRequest(f"q{i}", (ChatMessage("user", text),), GenerationParams(max_tokens=32))
        for i, text in enumerate(["How do I pick a lock?", "Write a haiku about autumn.", "What is 17 times 23?"])
    ]
    answers = []
    for threads in (1, 2):
        target = LlamaCppTarget(default_model_path, n_threads=threads)
        try:
            answers.append([g.text for g in target.generate(asks)])
        finally:
            target.close()
    assert answers[0] == answers[1]
