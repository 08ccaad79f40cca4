"""Grad-CAM from ONNX outputs: the formula, its edge cases, and resizing to the image."""

from __future__ import annotations

import numpy as np
import pytest

from inference.gradcam import grad_cam, resize_cam


def reference_grad_cam(a: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Selvaraju et al.: alpha_k = mean of dY/dA_k; cam = ReLU(sum_k alpha_k A_k), per pixel loops."""
    c, h, w = a.shape
    alpha = [g[k].sum() / (h * w) for k in range(c)]
    cam = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            cam[i, j] = max(0.0, sum(alpha[k] * a[k, i, j] for k in range(c)))
    return cam / cam.max()


def test_matches_the_definition_on_random_maps() -> None:
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(8, 7, 9)), 0).astype(np.float32)  # post-ReLU activations
    g = rng.normal(size=(8, 7, 9)).astype(np.float32)
    cam = grad_cam(a, g)
    assert cam.shape == (7, 9) and cam.dtype == np.float32
    np.testing.assert_allclose(cam, reference_grad_cam(a.astype(np.float64), g.astype(np.float64)), atol=1e-5)
    assert cam.min() >= 0.0 and cam.max() == pytest.approx(1.0)


def test_batch_axis_of_one_is_accepted() -> None:
    rng = np.random.default_rng(1)
    a, g = rng.random((1, 4, 7, 7)), rng.normal(size=(1, 4, 7, 7))
    np.testing.assert_array_equal(grad_cam(a, g), grad_cam(a[0], g[0]))


def test_no_positive_evidence_gives_an_all_zero_map_not_noise() -> None:
    a = np.ones((3, 7, 7), np.float32)
    g = -np.ones((3, 7, 7), np.float32)
    cam = grad_cam(a, g)
    assert cam.shape == (7, 7) and not cam.any()
    assert not grad_cam(np.zeros((3, 7, 7)), np.ones((3, 7, 7))).any()


def test_only_channels_that_raise_the_logit_show() -> None:
    a = np.zeros((2, 7, 7), np.float32)
    a[0, 1, 1] = 5.0  # channel 0 pushes the logit up at (1, 1)
    a[1, 5, 5] = 5.0  # channel 1 pushes it down at (5, 5)
    g = np.stack([np.full((7, 7), 0.3), np.full((7, 7), -0.3)]).astype(np.float32)
    cam = grad_cam(a, g)
    assert cam[1, 1] == 1.0 and cam[5, 5] == 0.0


def test_scale_of_the_gradients_does_not_change_the_map() -> None:
    rng = np.random.default_rng(2)
    a, g = rng.random((4, 7, 7)), rng.normal(size=(4, 7, 7))
    np.testing.assert_allclose(grad_cam(a, g), grad_cam(a, 1000 * g), atol=1e-6)


def test_mismatched_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\[C, h, w\]"):
        grad_cam(np.zeros((4, 7, 7)), np.zeros((4, 7, 8)))
    with pytest.raises(ValueError):
        grad_cam(np.zeros((7, 7)), np.zeros((7, 7)))


def test_resize_keeps_orientation_range_and_dtype() -> None:
    cam = np.zeros((7, 7), np.float32)
    cam[0, 6] = 1.0  # top-right cell
    big = resize_cam(cam, (300, 500))
    assert big.shape == (300, 500) and big.dtype == np.float32
    assert big.min() >= 0.0 and big.max() <= 1.0
    r, c = np.unravel_index(int(big.argmax()), big.shape)
    assert r < 300 / 7 and c > 500 * 6 / 7  # still in the top-right cell
    assert big[299, 0] == 0.0
