"""What changed (webapp.changes): pure image logic on small pictures, no server."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter

from webapp.changes import (
    ANALYSIS_SIDE,
    HIGHLIGHT,
    NOISE_MEASURED,
    OUTLINE,
    THRESHOLD,
    analysis_size,
    find_changes,
    painted_box,
    render_overlay,
    what_changed,
)

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def scene(size=(480, 320), seed=3) -> Image.Image:
    """Detail everywhere (smoothed noise), so a shift or a change cannot hide in a flat area."""
    rng = np.random.default_rng(seed)
    noise = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
    return noise.filter(ImageFilter.GaussianBlur(3)).point(lambda v: min(255, max(0, (v - 128) * 4 + 128)))


def jpeg_again(image: Image.Image, quality: int) -> Image.Image:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return Image.open(io.BytesIO(out.getvalue())).convert("RGB")


def test_the_threshold_sits_above_the_measured_jpeg_noise():
    assert THRESHOLD >= 1.5 * NOISE_MEASURED


def test_an_identical_result_changed_nothing():
    picture = scene()
    changes = find_changes(picture, picture.copy())
    assert changes.share == 0 and not changes.moved


@pytest.mark.parametrize("name", ["astronaut.jpg", "rocket.jpg", "coffee.jpg"])
def test_jpeg_re_encoding_is_not_a_change(name):
    with Image.open(EXAMPLES / name) as opened:
        source = opened.convert("RGB")
    # the result of an edit that changed nothing, and 图1 as the store keeps it: two encodings
    changes = find_changes(jpeg_again(source, 85), jpeg_again(source, 92))
    assert changes.share == 0 and not changes.moved


def test_a_changed_object_is_found_with_its_share():
    before = scene()
    after = before.copy()
    ImageDraw.Draw(after).rectangle((100, 80, 220, 160), fill=(20, 200, 40))  # 120x80 of 480x320
    changes = find_changes(before, after)
    assert not changes.moved
    assert changes.share == pytest.approx(120 * 80 / (480 * 320), rel=0.25)
    rows, cols = np.nonzero(np.asarray(changes.mask))
    assert (cols.min(), rows.min()) >= (95, 75) and cols.max() <= 225 and rows.max() <= 165


def test_a_shifted_picture_moved_rather_than_changed_at_every_edge():
    big = scene((520, 360))
    before, after = big.crop((0, 0, 480, 320)), big.crop((12, 7, 492, 327))
    changes = find_changes(before, after)
    assert changes.moved
    assert changes.shift == (-12, -7) or changes.share > 0.6


def test_a_zoomed_picture_moved():
    before = scene()
    after = before.crop((40, 27, 440, 293)).resize(before.size, Image.Resampling.BICUBIC)
    assert find_changes(before, after).moved


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_a_region_edit_says_nothing_changed_outside_the_region():
    before = scene()
    region = Image.new("L", before.size, 0)
    ImageDraw.Draw(region).ellipse((150, 100, 330, 220), fill=255)
    after = before.copy()
    after.paste((250, 20, 200), (0, 0, *before.size), region)
    changes = find_changes(before, after, region)
    assert changes.share > 0.1 and changes.outside == 0 and not changes.moved
    after.paste((0, 0, 255), (10, 10, 60, 60))  # and a change far outside it is reported
    assert find_changes(before, after, region).outside > 0.01


def test_the_comparison_runs_at_the_analysis_scale_and_fits_before_into_the_frame():
    assert analysis_size((4000, 3000)) == (ANALYSIS_SIDE, ANALYSIS_SIDE * 3 // 4)
    assert analysis_size((300, 200)) == (300, 200)  # never enlarged
    before = scene((240, 160))  # 图1 at half the size: fitted, not a change
    after = before.resize((480, 320), Image.Resampling.BICUBIC)
    assert find_changes(before, after).share < 0.01


def test_the_overlay_tints_changes_dims_the_rest_and_outlines_the_region():
    before = Image.new("RGB", (200, 100), (200, 200, 200))
    after = before.copy()
    ImageDraw.Draw(after).rectangle((20, 20, 60, 60), fill=(0, 0, 0))
    region = Image.new("L", before.size, 0)
    ImageDraw.Draw(region).rectangle((10, 10, 70, 70), fill=255)
    picture = render_overlay(after, find_changes(before, after, region), region)
    assert picture.size == (200, 100)
    assert picture.getpixel((150, 50))[0] < 100  # unchanged: dimmed
    red, green, blue = picture.getpixel((40, 40))
    assert red > green and blue > green and (red, blue) != (0, 0)  # changed: tinted
    assert HIGHLIGHT[0] > HIGHLIGHT[1]
    assert picture.getpixel((71, 40)) == OUTLINE  # the painted region's border


def test_a_moved_picture_is_not_tinted(tmp_path):
    before = scene()
    after = before.crop((40, 27, 440, 293)).resize(before.size)
    changes = find_changes(before, after)
    picture = np.asarray(render_overlay(after, changes)).astype(int)
    assert picture.max() <= 255 * 0.36  # dimmed all over, no highlight


def test_what_changed_writes_an_overlay_file(tmp_path):
    before, after = tmp_path / "before.jpg", tmp_path / "after.png"
    picture = scene()
    picture.save(before, quality=90)
    changed = picture.copy()
    ImageDraw.Draw(changed).rectangle((10, 10, 100, 100), fill=(255, 255, 0))
    changed.save(after)
    path, changes = what_changed(before, after, tmp_path)
    assert Path(path).is_relative_to(tmp_path / "juhe-changes")
    with Image.open(path) as overlay:
        assert overlay.size == picture.size and overlay.format == "PNG"
    assert 0.03 < changes.share < 0.1


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_a_region_result_from_its_sidecar_is_outlined_and_clean_outside(tmp_path):
    picture = scene((400, 300))
    before, after, sidecar = tmp_path / "before.png", tmp_path / "after.png", tmp_path / "after.json"
    picture.save(before)
    edited = picture.copy()
    ImageDraw.Draw(edited).ellipse((120, 90, 260, 200), fill=(255, 0, 0))
    edited.save(after)
    sidecar.write_text(json.dumps({"region": {"painted_box": [115, 85, 265, 205]}}))
    box = painted_box(sidecar)
    assert box == (115, 85, 265, 205)
    path, changes = what_changed(before, after, tmp_path, box)
    assert changes.outside == 0 and changes.share > 0.05
    with Image.open(path) as overlay:
        assert overlay.convert("RGB").getpixel((265, 150)) == OUTLINE


@pytest.mark.parametrize(
    "content", ['{"region": null}', "{}", "not json", '{"region": {"painted_box": [5, 5, 1, 1]}}', "[]"]
)
def test_no_painted_box_without_a_region(tmp_path, content):
    sidecar = tmp_path / "x.json"
    sidecar.write_text(content)
    assert painted_box(sidecar) is None
    assert painted_box(tmp_path / "missing.json") is None and painted_box(None) is None
