"""Training sees what the app will: the batch normalization equals inference.preprocess's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.preprocess import PreprocessSpec, normalize
from training.augment import normalize_batch
from training.data import list_items, preload

from tests.conftest import KERMANY_TRAIN


@pytest.fixture(scope="module")
def films() -> np.ndarray:
    return preload(list_items(KERMANY_TRAIN.parent)[:: 700][:6], size=112)


@pytest.mark.parametrize("normalization", ["histogram_equalization", "local_equalization"])
def test_batch_normalization_equals_the_apps_on_8_bit_films(films, normalization):
    spec = PreprocessSpec(height=112, width=112, normalization=normalization)
    batch = normalize_batch(torch.from_numpy(films).unsqueeze(1).float() / 255.0, spec)
    app = np.stack([normalize(f.astype(np.float32), spec) for f in films])
    assert np.allclose(batch[:, 0].numpy(), app, atol=1e-4)
