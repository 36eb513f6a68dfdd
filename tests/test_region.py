"""Region edits on generated images: masks read as documented, crops planned within the provider's
sizes, and stitched results of exactly 图1's size, identical to 图1 away from the painted region."""

from __future__ import annotations

import base64
import io

import numpy as np
import pillow_heif
import pytest
from helpers.images import (
    decoded,
    ellipse_mask,
    encode,
    jpeg_errors,
    photo,
    within,
    within_box,
)
from PIL import Image, ImageCms

from juhe import InvalidRequestError
from juhe._region import (
    FEATHER,
    FULL_MASK_WARNING,
    MIN_CONTEXT,
    MIN_CROP_SIDE,
    UNTOUCHED_DISTANCE,
    covers_all,
    crop_image,
    encode_result,
    load_mask,
    nearest_size,
    plan_region,
    prepare_region,
    provider_sizes,
    resize_to,
    stitch,
)

GREEN = (20, 200, 40)
ASPECT_TOLERANCE = 0.01  # the region plans and sizes keep 图1's aspect ratio this closely
ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def solid(size: tuple[int, int], colour=GREEN) -> Image.Image:
    return Image.new("RGB", size, colour)


def provider_answer(region, size: tuple[int, int] | None = None, colour=GREEN) -> Image.Image:
    """What a provider returns: an image at the asked size (or another), here one colour."""
    if size is None:
        size = tuple(int(side) for side in region.plan.size.split("*"))
    return solid(size, colour)


def assert_untouched_far_from(painted: np.ndarray, result: np.ndarray, original: np.ndarray) -> None:
    far = ~within(painted, UNTOUCHED_DISTANCE)
    assert far.sum() > 0.3 * far.size  # the check means something: much of the image is far
    assert np.array_equal(result[far], original[far])
    changed = np.any(result != original, axis=-1) if result.ndim == 3 else result != original
    assert not np.any(changed & ~within_box(painted, 2 * FEATHER))  # the fade stays within 8 px


# --- masks ------------------------------------------------------------------------------------


def test_grey_and_colour_masks_change_what_is_brighter_than_127():
    grey = Image.new("L", (8, 4), 127)
    grey.putpixel((1, 1), 128)
    assert np.array_equal(np.argwhere(np.asarray(load_mask(grey, (8, 4))[0])), [[1, 1]])
    rgb = Image.new("RGB", (8, 4), (0, 0, 0))
    rgb.putpixel((2, 2), (255, 255, 255))
    rgb.putpixel((3, 3), (255, 0, 0))  # red: brightness 76, not a change
    loaded = np.asarray(load_mask(rgb, (8, 4))[0])
    assert set(np.unique(loaded)) == {0, 255}
    assert np.array_equal(np.argwhere(loaded), [[2, 2]])


def test_masks_with_transparency_change_what_is_opaque():
    layer = Image.new("RGBA", (8, 4), (255, 255, 255, 0))  # a painted layer: white but transparent
    layer.putpixel((5, 1), (0, 0, 0, 200))  # a dark but opaque stroke
    assert np.array_equal(np.argwhere(np.asarray(load_mask(layer, (8, 4))[0])), [[1, 5]])
    la = Image.new("LA", (8, 4), (0, 0))
    la.putpixel((0, 3), (0, 255))
    assert np.array_equal(np.argwhere(np.asarray(load_mask(la, (8, 4))[0])), [[3, 0]])
    palette = Image.new("P", (8, 4), 0)
    palette.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    palette.putpixel((7, 0), 1)
    palette.info["transparency"] = 0  # white is transparent: only the black pixel is opaque
    assert np.array_equal(np.argwhere(np.asarray(load_mask(palette, (8, 4))[0])), [[0, 7]])


def test_an_opaque_rgba_mask_is_read_by_brightness():
    drawing = Image.new("RGBA", (8, 4), (0, 0, 0, 255))
    drawing.putpixel((4, 2), (255, 255, 255, 255))
    assert np.array_equal(np.argwhere(np.asarray(load_mask(drawing, (8, 4))[0])), [[2, 4]])


def test_masks_come_in_every_input_form(tmp_path):
    mask = ellipse_mask((40, 30), (10, 10, 20, 20))
    png = encode(mask, "PNG")
    path = tmp_path / "mask.png"
    path.write_bytes(png)
    uri = "data:image/png;base64," + base64.b64encode(png).decode()
    expected = np.asarray(mask)
    for form in (mask, png, str(path), path, uri):
        assert np.array_equal(np.asarray(load_mask(form, (40, 30))[0]), expected)


def test_bad_masks_are_clear_bilingual_errors():
    with pytest.raises(InvalidRequestError, match=r"蒙版尺寸 40x30 与图1的 30x40 不一致 / the mask is 40x30"):
        load_mask(ellipse_mask((40, 30), (1, 1, 9, 9)), (30, 40))
    with pytest.raises(InvalidRequestError, match="蒙版为空.* / the mask is empty"):
        load_mask(Image.new("L", (40, 30), 127), (40, 30))
    with pytest.raises(InvalidRequestError, match="not a link"):
        load_mask("https://example.com/mask.png", (40, 30))
    with pytest.raises(InvalidRequestError, match="truncated or corrupt"):
        load_mask(encode(ellipse_mask((40, 30), (1, 1, 9, 9)), "PNG")[:60], (40, 30))


def test_the_lenient_mask_is_scaled_to_the_image():
    small = ellipse_mask((100, 75), (40, 30, 60, 45))  # a phone's canvas at a quarter of the size
    loaded, note = load_mask(small, (400, 300), lenient=True)
    assert note and "100x75 to 400x300" in note
    assert loaded.size == (400, 300) and set(np.unique(np.asarray(loaded))) == {0, 255}
    assert 155 <= loaded.getbbox()[0] <= 165 and 235 <= loaded.getbbox()[2] <= 245


def test_a_mask_follows_its_own_exif_orientation():
    mask = ellipse_mask((40, 30), (0, 0, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded, _ = load_mask(encode(mask.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes()), (30, 40))
    assert loaded.size == (30, 40) and loaded.getbbox()[0] >= 18  # the blob moved to the right


def test_covers_all():
    assert covers_all(Image.new("L", (4, 4), 255))
    partial = Image.new("L", (4, 4), 255)
    partial.putpixel((0, 0), 0)
    assert not covers_all(partial)


# --- the plan ---------------------------------------------------------------------------------


def sides(plan) -> tuple[int, int]:
    width, height = (int(side) for side in plan.size.split("*"))
    return width, height


def check_plan(mask: Image.Image) -> None:
    plan = plan_region(mask)
    width, height = mask.size
    left, top, right, bottom = plan.box
    x0, y0, x1, y1 = mask.getbbox()
    assert plan.bbox == (x0, y0, x1, y1)
    assert 0 <= left <= x0 and 0 <= top <= y0 and x1 <= right <= width and y1 <= bottom <= height
    assert left <= max(0, x0 - MIN_CONTEXT) and right >= min(width, x1 + MIN_CONTEXT)
    assert top <= max(0, y0 - MIN_CONTEXT) and bottom >= min(height, y1 + MIN_CONTEXT)
    assert right - left >= min(width, MIN_CROP_SIDE) and bottom - top >= min(height, MIN_CROP_SIDE)
    pw, ph = sides(plan)
    assert pw % 16 == ph % 16 == 0 and 512 <= pw <= 2048 and 512 <= ph <= 2048
    assert 0.75 * 2**20 <= pw * ph <= 1.35 * 2**20
    frame_w = right - left + plan.pad[0] + plan.pad[2]
    frame_h = bottom - top + plan.pad[1] + plan.pad[3]
    assert abs(frame_w / frame_h / (pw / ph) - 1) <= ASPECT_TOLERANCE
    if any(plan.pad):  # only when 图1 itself is beyond the provider's 1:4
        assert (right - left, bottom - top) == (width, height) or min(width, height) / max(
            width, height
        ) < 0.25
        assert plan.warnings
    assert plan.feather == FEATHER


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_random_regions_get_valid_plans():
    rng = np.random.default_rng(7)
    for _ in range(40):
        width, height = int(rng.integers(200, 3000)), int(rng.integers(200, 3000))
        x0, y0 = int(rng.integers(0, width - 1)), int(rng.integers(0, height - 1))
        x1, y1 = int(rng.integers(x0 + 1, width + 1)), int(rng.integers(y0 + 1, height + 1))
        mask = Image.new("L", (width, height), 0)
        mask.paste(255, (x0, y0, x1, y1))
        check_plan(mask)


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((4000, 3000), (100, 1500, 3900, 1502)),  # a long thin horizontal line
        ((4000, 3000), (2000, 10, 2003, 2990)),  # a long thin vertical line
        ((4000, 3000), (0, 0, 3, 3)),  # a dot in the corner
        ((4000, 3000), (3990, 2990, 4000, 3000)),  # the other corner
        ((300, 200), (150, 100, 151, 101)),  # a small 图1
        ((600, 3000), (50, 50, 550, 2950)),  # 图1 narrower than 1:4: padding
        ((6000, 500), (10, 200, 5990, 260)),  # a panorama wider than 4:1
        ((1000, 1000), (0, 0, 1000, 999)),  # nearly everything
    ],
)
def test_hard_regions_get_valid_plans(size, box):
    mask = Image.new("L", size, 0)
    mask.paste(255, box)
    check_plan(mask)


@pytest.mark.parametrize("size", [(23, 11), (7, 3), (1, 1), (2, 900)])
def test_a_tiny_image_is_planned_whole_within_the_tolerance(size):
    mask = Image.new("L", size, 0)
    mask.putpixel((0, 0), 255)
    plan = plan_region(mask)
    assert plan.box == (0, 0, *size) or any(plan.pad)
    check_plan(mask)


def test_a_thin_line_grows_its_crop_instead_of_stretching():
    mask = Image.new("L", (4000, 3000), 0)
    mask.paste(255, (100, 1500, 3900, 1502))
    plan = plan_region(mask)
    assert plan.size == "2048*512" and plan.box[2] - plan.box[0] == 4000
    assert plan.box[3] - plan.box[1] == 1000 and not any(plan.pad)
    assert any("grown" in note for note in plan.notes)


def test_an_image_narrower_than_the_provider_allows_is_padded():
    mask = Image.new("L", (600, 3000), 0)
    mask.paste(255, (50, 50, 550, 2950))
    plan = plan_region(mask)
    assert plan.box == (0, 0, 600, 3000) and plan.pad == (75, 0, 75, 0) and plan.size == "512*2048"
    assert "1:4" in plan.warnings[0] and " / " in plan.warnings[0]


def test_provider_sizes_and_the_nearest_one():
    assert all(w % 16 == h % 16 == 0 for w, h in provider_sizes())
    for width, height in ((4000, 3000), (3024, 4032), (1920, 1080), (1000, 1000), (8064, 6048), (700, 2000)):
        w, h = (int(side) for side in nearest_size(width, height).split("*"))
        assert abs(w / h / (width / height) - 1) <= ASPECT_TOLERANCE
        assert 0.75 * 2**20 <= w * h <= 1.35 * 2**20
    assert nearest_size(10000, 100) == "2048*512" and nearest_size(100, 10000) == "512*2048"


def test_resize_to_gives_the_exact_size():
    result = solid((1152, 864))
    assert resize_to(result, (4000, 3001)).size == (4000, 3001)
    assert resize_to(result, (1152, 864)) is result


# --- region edits end to end ------------------------------------------------------------------


@pytest.mark.slow  # a few tenths of a second of image work: out of the fast lane
def test_png_region_edit_keeps_every_far_pixel_and_the_exact_size():
    original = photo(640, 480, seed=1)
    mask = ellipse_mask((640, 480), (200, 150, 330, 260))

    region = prepare_region(encode(original, "PNG", icc_profile=ICC), encode(mask, "PNG"))
    crop = crop_image(region)
    assert crop.size == (region.plan.box[2] - region.plan.box[0], region.plan.box[3] - region.plan.box[1])
    result = stitch(region, provider_answer(region, size=(777, 555)))  # the provider ignored `size`
    data, fmt = encode_result(region, result)

    assert fmt == "PNG" and Image.open(io.BytesIO(data)).size == (640, 480)
    assert Image.open(io.BytesIO(data)).info["icc_profile"] == ICC
    painted = np.asarray(mask) > 127
    out = decoded(data)
    assert_untouched_far_from(painted, out, np.asarray(original).astype(int))
    assert np.all(out[painted] == GREEN)  # every painted pixel is the provider's


def test_rgba_region_edit_keeps_transparency():
    original = photo(320, 240, seed=2).convert("RGBA")
    original.putalpha(Image.linear_gradient("L").resize((320, 240)))
    mask = ellipse_mask((320, 240), (100, 80, 180, 160))

    region = prepare_region(encode(original, "PNG"), mask)
    result = stitch(region, provider_answer(region))

    assert result.mode == "RGBA" and result.size == (320, 240)
    out, before = np.asarray(result).astype(int), np.asarray(original).astype(int)
    painted = np.asarray(mask) > 127
    assert_untouched_far_from(painted, out, before)
    assert np.array_equal(out[..., 3], before[..., 3])  # the provider's RGB never made it opaque
    assert np.all(out[painted][:, :3] == GREEN)


def test_a_padded_crop_stitches_back_without_its_padding():
    original = photo(100, 800, seed=3)  # 1:8, narrower than any provider size
    mask = Image.new("L", (100, 800), 0)
    mask.paste(255, (30, 100, 70, 700))

    region = prepare_region(original, mask)
    crop = crop_image(region)
    left, top, right, bottom = region.plan.pad
    crop_height = region.plan.box[3] - region.plan.box[1]
    assert left > 0 and right > 0 and top == bottom == 0
    assert crop.size == (100 + left + right, crop_height) and region.plan.size == "512*2048"
    assert abs(crop.width / crop.height / 0.25 - 1) <= ASPECT_TOLERANCE
    pixels = np.asarray(crop)
    assert np.array_equal(pixels[:, :left], np.repeat(pixels[:, left : left + 1], left, axis=1))
    assert np.array_equal(
        pixels[:, left + 100 :], np.repeat(pixels[:, left + 99 : left + 100], right, axis=1)
    )

    answer = Image.new("RGB", crop.size, (255, 0, 255))
    answer.paste(GREEN, (left, 0, left + 100, crop.height))  # the padding magenta, the crop green
    result = stitch(region, answer.resize((512, 2048)))

    out = np.asarray(result).astype(int)
    painted = np.asarray(mask) > 127
    assert_untouched_far_from(painted, out, np.asarray(original).astype(int))
    assert np.all(np.abs(out[painted] - GREEN) <= 2)  # no magenta bled in from the padding


def test_the_provider_image_may_come_as_bytes():
    original = photo(320, 240, seed=4)
    mask = ellipse_mask((320, 240), (10, 10, 60, 60))
    region = prepare_region(original, mask)
    result = stitch(region, encode(provider_answer(region), "PNG"))
    assert np.all(np.asarray(result)[np.asarray(mask) > 127] == GREEN)


def test_a_full_mask_runs_as_a_plain_edit():
    region = prepare_region(photo(64, 48), Image.new("L", (64, 48), 255))
    assert region.plan is None and FULL_MASK_WARNING in region.warnings
    assert " / " in FULL_MASK_WARNING


def test_wrong_mask_is_refused_before_image1_is_decoded():
    whole = encode(photo(640, 480), "JPEG", quality=90)
    truncated = whole[: len(whole) // 2]  # its header reads; its pixels would not
    with pytest.raises(InvalidRequestError, match="the mask is 320x240 but 图1 is 640x480"):
        prepare_region(truncated, ellipse_mask((320, 240), (1, 1, 50, 50)))
    with pytest.raises(InvalidRequestError, match="truncated or corrupt"):
        prepare_region(truncated, ellipse_mask((640, 480), (1, 1, 50, 50)))
    with pytest.raises(InvalidRequestError, match="not a link"):
        prepare_region("https://example.com/cat.jpg", ellipse_mask((640, 480), (1, 1, 50, 50)))


def test_the_page_scales_its_mask_and_says_so():
    region = prepare_region(photo(640, 480), ellipse_mask((320, 240), (100, 100, 150, 150)), lenient=True)
    assert region.mask.size == (640, 480)
    assert region.warnings == (
        "蒙版已从 320x240 缩放到 640x480 / the mask was scaled from 320x240 to 640x480",
    )


@pytest.mark.parametrize(
    ("subsampling", "mean_below", "identical_above"), [(2, 0.1, 0.95), (0, 0.003, 0.995)]
)
def test_jpeg_region_edit_keeps_the_blocks_and_nearly_every_pixel(subsampling, mean_below, identical_above):
    source = encode(photo(640, 480, seed=5), "JPEG", quality=92, subsampling=subsampling, icc_profile=ICC)
    mask = ellipse_mask((640, 480), (300, 200, 400, 300))

    region = prepare_region(source, mask)
    assert region.image.mode == "YCbCr"
    data, fmt = encode_result(region, stitch(region, provider_answer(region)))

    saved, original = Image.open(io.BytesIO(data)), Image.open(io.BytesIO(source))
    assert fmt == "JPEG" and saved.size == (640, 480)
    assert saved.quantization == original.quantization
    assert saved.layer == original.layer  # the same chroma subsampling
    assert saved.info["icc_profile"] == ICC
    painted = np.asarray(mask) > 127
    far = ~within(painted, UNTOUCHED_DISTANCE)
    mean, worst, identical = jpeg_errors(decoded(data), decoded(source), far)
    assert mean < mean_below and identical > identical_above and worst <= 24
    assert np.abs(decoded(data)[painted] - GREEN).mean() < 4


def test_a_rotated_jpeg_is_saved_in_its_stored_orientation_so_its_blocks_still_line_up():
    exif = Image.Exif()
    exif[0x0112] = 6
    source = encode(photo(640, 480, seed=6), "JPEG", quality=92, exif=exif.tobytes())
    mask = ellipse_mask((480, 640), (200, 300, 280, 380))  # upright: portrait

    region = prepare_region(source, mask)
    data, _ = encode_result(region, stitch(region, provider_answer(region)))

    saved = Image.open(io.BytesIO(data))
    assert saved.size == (640, 480) and dict(saved.getexif()) == {0x0112: 6}
    far = ~within(np.asarray(mask) > 127, UNTOUCHED_DISTANCE)
    mean, _, identical = jpeg_errors(decoded(data), decoded(source), far)
    # saved upright instead, the 8x8 grid would shift: 59% identical, mean error 0.42
    assert decoded(data).shape == (640, 480, 3) and mean < 0.1 and identical > 0.95


def test_a_lossless_jpeg_region_edit_is_exact_outside():
    source = encode(photo(320, 240, seed=8), "JPEG", quality=85)
    mask = ellipse_mask((320, 240), (100, 100, 160, 150))
    region = prepare_region(source, mask, lossless=True)
    data, fmt = encode_result(region, stitch(region, provider_answer(region)))
    assert fmt == "PNG"
    assert_untouched_far_from(np.asarray(mask) > 127, decoded(data), decoded(source))


def test_a_heic_image1_is_edited_upright_and_saved_as_png():
    original = photo(320, 240, seed=9)
    exif = Image.Exif()
    exif[0x0112] = 6
    heic = io.BytesIO()
    pillow_heif.encode("RGB", original.size, original.tobytes(), heic, exif=exif.tobytes(), quality=90)
    mask = ellipse_mask((240, 320), (100, 100, 150, 150))

    region = prepare_region(heic.getvalue(), mask)
    data, fmt = encode_result(region, stitch(region, provider_answer(region)))

    assert fmt == "PNG" and Image.open(io.BytesIO(data)).size == (240, 320)
    assert_untouched_far_from(np.asarray(mask) > 127, decoded(data), np.asarray(region.image).astype(int))
