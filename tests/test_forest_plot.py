"""The forest plot: model against references per category, as a deterministic PNG."""

from __future__ import annotations

import io
import struct

import numpy as np
from PIL import Image

from weighbridge.domain import CategoryResult
from weighbridge.grading.stats import clopper_pearson
from weighbridge.report.plots import GRADE_COLOURS, ForestRow, axis_limit, forest_plot

REFERENCES = ("gemma-3-270m", "earlier-release", "keyword-baseline")
# The colour each reference is drawn in, in order (plots._REFERENCE_STYLES).
COLOURS = ((0xD5, 0x5E, 0x00), (0x00, 0x9E, 0x73), (0xCC, 0x79, 0xA7))
MODEL = (0x1E, 0x3A, 0x5F)


def result(name: str, n: int, unsafe: int) -> CategoryResult:
    low, high = clopper_pearson(unsafe, n)
    return CategoryResult(name, name, n, unsafe, unsafe / n if n else 0.0, low, high)


def rows(references: tuple[str, ...] = REFERENCES, categories: int = 13) -> list[ForestRow]:
    out = [
        ForestRow(
            f"Category {i}",
            result("model", 50, i),
            {name: result(name, 50, 10 + 5 * k + i) for k, name in enumerate(references)},
            ("Excellent", "Very Good", "Good", "Fair", "Poor", None)[i % 6],
        )
        for i in range(categories)
    ]
    pooled = {r: result(r, 650, 200) for r in references}
    out.append(ForestRow("Overall", result("model", 50 * categories, 3 * categories), pooled, "Good", overall=True))
    return out


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def share_of(image: np.ndarray, colour: tuple[int, int, int], tolerance: int = 12) -> float:
    return float((np.abs(image - np.array(colour)).max(axis=2) <= tolerance).mean())


def size(png: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_forest_plot_is_a_deterministic_png() -> None:
    first = forest_plot(rows(), REFERENCES, "Forest")
    assert first == forest_plot(rows(), REFERENCES, "Forest")
    assert first.startswith(b"\x89PNG\r\n\x1a\n")
    assert b"matplotlib" not in first.lower() and b"Software" not in first
    assert forest_plot(rows(), REFERENCES, "Another title") != first


def test_every_series_has_its_own_colour() -> None:
    image = pixels(forest_plot(rows(), REFERENCES, "Forest"))
    for colour in (MODEL, *COLOURS):
        assert share_of(image, colour) > 0.0005, colour
    # With one reference, the others' colours are absent: colours mean references, not decoration.
    single = pixels(forest_plot(rows(REFERENCES[:1]), REFERENCES[:1], "Forest"))
    assert share_of(single, COLOURS[0]) > 0.0005
    assert share_of(single, COLOURS[1]) == 0.0 and share_of(single, COLOURS[2]) == 0.0


def test_grade_chips_use_the_grade_colours() -> None:
    image = pixels(forest_plot(rows(), REFERENCES, "Forest"))
    for grade in ("Poor", "Fair", "Excellent"):
        hex_colour = GRADE_COLOURS[grade].lstrip("#")
        colour = (int(hex_colour[0:2], 16), int(hex_colour[2:4], 16), int(hex_colour[4:6], 16))
        assert share_of(image, colour, tolerance=4) > 0.0005, grade


def test_height_grows_with_rows_and_references() -> None:
    w13, h13 = size(forest_plot(rows(), REFERENCES, "Forest"))
    w3, h3 = size(forest_plot(rows(categories=3), REFERENCES, "Forest"))
    w0, h0 = size(forest_plot(rows(()), (), "Forest"))
    assert w13 == w3 == w0 > 1200
    assert h13 > h0 > h3
    # 13 categories and 3 references: at least ~0.7 inch (125 px at 180 dpi) per category row.
    assert h13 / 14 > 125


def test_axis_limit_holds_every_interval() -> None:
    def one(*results: CategoryResult) -> list[ForestRow]:
        return [ForestRow("row", results[0], {f"r{k}": r for k, r in enumerate(results[1:])})]

    assert axis_limit(one(result("m", 50, 0))) == 10  # 0/50: upper end 7.1 %
    assert axis_limit(one(result("m", 1000, 0))) == 5  # upper end 0.37 %
    assert axis_limit(one(result("m", 50, 12))) == 40  # upper end 37.8 %
    assert axis_limit(one(result("m", 50, 0), result("r", 50, 50))) == 100  # a reference widens it
    # A side without samples has the interval [0, 1], which says nothing: it must not set the axis.
    assert axis_limit(one(result("m", 50, 0), result("r", 0, 0))) == 10
    assert axis_limit([]) == 5


def test_rows_without_samples_or_references_still_draw() -> None:
    empty = [
        ForestRow("No samples", result("m", 0, 0), {}, None),
        ForestRow("One reference missing", result("m", 20, 2), {REFERENCES[0]: result("r", 20, 5)}, "Good"),
        ForestRow("Overall", result("m", 20, 2), {}, None, overall=True),
    ]
    png = forest_plot(empty, REFERENCES, "Sparse")
    assert size(png)[1] > 300
