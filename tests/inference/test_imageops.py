"""The numpy/Pillow image operations, checked against OpenCV (a test-only dependency):
the gate statistics and the figures in the model card were measured through OpenCV."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from inference.imageops import decode_png, encode_png, gaussian_blur, resize_area, resize_linear

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("shape", [(224, 224), (37, 51), (3, 40), (1, 9)])
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.3, 4.0])
def test_gaussian_blur_matches_opencv(shape, sigma):
    img = RNG.random(shape).astype(np.float32)
    ours = gaussian_blur(img, sigma)
    assert ours.dtype == np.float32 and ours.shape == shape
    np.testing.assert_allclose(ours, cv2.GaussianBlur(img, (0, 0), sigma), atol=1e-5)


@pytest.mark.parametrize(("src", "dst"), [((7, 7), (3000, 2500)), ((224, 224), (300, 200)),
                                          ((200, 3000), (224, 224)), ((1, 5), (4, 9))])
def test_bilinear_resize_matches_opencv(src, dst):
    img = RNG.random(src).astype(np.float32)
    expected = cv2.resize(img, dst[::-1], interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(resize_linear(img, dst), expected, atol=1e-5)


def test_area_resize_of_whole_blocks_is_the_block_mean():
    img = RNG.random((224, 224)).astype(np.float32)
    small = resize_area(img, (16, 16))
    assert small[3, 5] == pytest.approx(img[42:56, 70:84].mean(), abs=1e-6)
    np.testing.assert_allclose(small, cv2.resize(img, (16, 16), interpolation=cv2.INTER_AREA), atol=1e-6)


def test_area_resize_of_a_film_is_close_to_opencv():
    """Pillow's box filter weighs the pixels on a block's edge whole where OpenCV weighs them
    by coverage: on a smooth radiograph-like image they agree within 1 % of the range."""
    film = cv2.GaussianBlur(RNG.random((2500, 2048)).astype(np.float32), (0, 0), 25)
    film = (film - film.min()) / np.ptp(film) * 4095.0
    ours = resize_area(film, (224, 224))
    theirs = cv2.resize(film, (224, 224), interpolation=cv2.INTER_AREA)
    assert ours.shape == (224, 224) and ours.dtype == np.float32
    assert np.abs(ours - theirs).max() < 0.01 * 4095 and np.abs(ours - theirs).mean() < 0.002 * 4095
    assert ours.mean() == pytest.approx(film.mean(), rel=1e-3)


@pytest.mark.parametrize("shape", [(40, 30), (40, 30, 3)])
def test_png_round_trip_is_exact(shape):
    img = (RNG.random(shape) * 255).astype(np.uint8)
    data = encode_png(img)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    np.testing.assert_array_equal(decode_png(data), img)
    by_opencv = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(by_opencv[..., ::-1] if by_opencv.ndim == 3 else by_opencv, img)


def test_png_refuses_what_it_cannot_store_faithfully():
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((4, 4, 4), np.uint8))
