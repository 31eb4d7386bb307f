import numpy as np
import pytest
import torch

from gnet.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, denormalize


def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same 3 x H x W values in the memory orders an analysis meets, and a strided view."""
    hwc = x.permute(1, 2, 0).contiguous().permute(2, 0, 1)  # what torchvision's PIL conversion gives
    return {"chw": x.contiguous(), "hwc": hwc, "strided": torch.stack([x, x], -1)[..., 0]}


@pytest.mark.parametrize("size", [(64, 64), (7, 5)])
def test_denormalize_gives_the_same_image_in_every_memory_layout(size):
    x = torch.randn(3, *size, generator=torch.Generator().manual_seed(0)) * 2  # values beyond [0, 1] once shifted
    std, mean = torch.tensor(IMAGENET_STD)[:, None, None], torch.tensor(IMAGENET_MEAN)[:, None, None]
    expected = (x.double() * std + mean).clamp(0, 1).permute(1, 2, 0).numpy()
    assert expected.min() == 0 and expected.max() == 1
    images = {name: denormalize(t, IMAGENET_MEAN, IMAGENET_STD) for name, t in _layouts(x).items()}
    for name, image in images.items():
        assert image.shape == (*size, 3) and image.dtype == np.float32, name
        np.testing.assert_allclose(image, expected, rtol=0, atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(image, images["chw"], err_msg=name)  # the same arithmetic, in any order


def test_denormalize_takes_one_mean_and_std_for_every_channel():
    """A card may give one mean and std for all channels (gnet.weights.loader allows 1 or 3 numbers)."""
    x = torch.randn(3, 6, 4, generator=torch.Generator().manual_seed(1))
    expected = (x.double() * 0.25 + 0.5).clamp(0, 1).permute(1, 2, 0).numpy()
    for name, t in _layouts(x).items():
        np.testing.assert_allclose(denormalize(t, [0.5], [0.25]), expected, rtol=0, atol=1e-6, err_msg=name)
