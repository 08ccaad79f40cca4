"""The architecture has no positional bias: padding is symmetric and the map lines up with the pixels.

Model 1.0's 3x3 stride-2 convolutions padded only the top and left of even-sized inputs, so a
uniform image lit up the bottom and right edges and attributions piled up in the right-most
column. These tests hold for any weights, so they use a freshly initialised network.
"""

from __future__ import annotations

import torch

from training.model import Ensemble, ExportWrapper, LungLensNet, conv_bn


def _signed_map(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """sum_c d logit / d feature_c * feature_c, per cell: the exported attribution."""
    wrapper = ExportWrapper(model, tuple(x.shape[2:])).eval()
    with torch.no_grad():
        _, feats, grads = wrapper(x)
    return (feats * grads).sum(dim=1)[0]


def _random_net(seed: int = 0) -> LungLensNet:
    torch.manual_seed(seed)
    net = LungLensNet().eval()
    with torch.no_grad():  # non-trivial BN statistics and affine terms, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
    return net


def test_feature_map_is_14_by_14():
    assert LungLensNet().eval().features(torch.zeros(1, 1, 224, 224)).shape[2:] == (14, 14)


def _symmetric_kernels(net: torch.nn.Module) -> torch.nn.Module:
    """Make every kernel mirror-symmetric in both axes: then only padding can break symmetry."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                w = m.weight
                m.weight.copy_((w + w.flip(2) + w.flip(3) + w.flip(2).flip(3)) / 4)
    return net


def test_uniform_image_gives_a_map_symmetric_in_both_axes():
    net = _symmetric_kernels(_random_net())
    cam = _signed_map(net, torch.full((1, 1, 224, 224), 0.7))
    assert torch.allclose(cam, torch.flip(cam, dims=[1]), atol=1e-5), "left-right asymmetry on a uniform image"
    assert torch.allclose(cam, torch.flip(cam, dims=[0]), atol=1e-5), "top-bottom asymmetry on a uniform image"
    assert cam.abs().max() > 0  # the check above cannot pass on an all-zero map by accident


def test_with_replicate_padding_a_uniform_image_gives_a_flat_map_for_any_weights():
    """Zero padding makes the border differ from the inside for any kernel that is not
    symmetric -- which trained kernels are not: a uniform film lights up some edges. Read past
    the edge as the edge pixel, a uniform image stays uniform at every layer."""
    for padding, flat in (("replicate", True), ("zeros", False)):
        torch.manual_seed(0)
        net = _random_net()
        replicate = LungLensNet(**net.config, padding=padding) if padding != "zeros" else net
        replicate.load_state_dict(net.state_dict())
        cam = _signed_map(replicate.eval(), torch.full((1, 1, 112, 112), 0.7))
        assert cam.abs().max() > 0
        assert torch.allclose(cam, torch.full_like(cam, cam[0, 0].item()), atol=1e-6) is flat, padding


def test_a_checkpoint_records_the_padding_it_was_trained_with(tmp_path):
    from training.train import load_checkpoint, network

    net = LungLensNet(padding="replicate")
    assert network(net.config).config == net.config == {**LungLensNet().config, "padding": "replicate"}
    torch.save({**net.config, "state_dict": net.state_dict()}, tmp_path / "last_ema.pt")
    assert load_checkpoint(tmp_path / "last_ema.pt").config["padding"] == "replicate"
    assert "padding" not in LungLensNet().config  # older checkpoints, without the key, read as zeros


def test_mirrored_input_gives_the_mirrored_map_for_any_weights():
    net = _random_net(1)
    x = torch.randn(1, 1, 224, 224, generator=torch.Generator().manual_seed(3))
    cam = _signed_map(net, x)
    cam_of_mirror = _signed_map(net, torch.flip(x, dims=[3]))
    # A random network is not mirror-equivariant (its kernels are not symmetric); padding is
    # the part that must not break it, so mirror the KERNELS too: then the map must mirror exactly.
    mirrored = _random_net(1)
    with torch.no_grad():
        for m in mirrored.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(torch.flip(m.weight, dims=[3]))
    cam_mirrored_net = _signed_map(mirrored, torch.flip(x, dims=[3]))
    assert torch.allclose(cam_mirrored_net, torch.flip(cam, dims=[1]), atol=1e-4)
    assert not torch.allclose(cam_of_mirror, torch.flip(cam, dims=[1]), atol=1e-4)  # the test has teeth


def test_old_stride2_3x3_pad1_is_what_the_uniform_check_catches():
    """The same check fails for model 1.0's downsampling convolution and passes for ours."""
    x = torch.ones(1, 1, 16, 16)
    old = _symmetric_kernels(torch.nn.Conv2d(1, 4, 3, stride=2, padding=1, bias=False))
    new = _symmetric_kernels(conv_bn(1, 4, stride=2)[0])
    with torch.no_grad():
        y_old, y_new = old(x)[0, 0], new(x)[0, 0]
    assert not torch.allclose(y_old, torch.flip(y_old, dims=[1]))  # padded left only
    assert torch.allclose(y_new, torch.flip(y_new, dims=[1])) and torch.allclose(y_new, torch.flip(y_new, dims=[0]))
    assert new.kernel_size == (4, 4) and new.padding == (1, 1)


def test_cell_i_is_centred_on_input_pixel_16i_plus_7_5():
    """Receptive-field centre of each cell: a point change at a pixel moves the cell whose
    centre (16 i + 7.5) is nearest, so the renderer's half-pixel-centre resize lines up."""
    net = _random_net(2)
    base = torch.zeros(1, 1, 224, 224)
    with torch.no_grad():
        f0 = net.features(base)
        hits = []
        for col in (40, 104, 120, 200):
            x = base.clone()
            x[0, 0, 100:102, col - 1 : col + 1] = 5.0  # a 2x2 spot centred on column col - 0.5
            change = (net.features(x) - f0).abs().sum(dim=(0, 1, 2))  # per column
            hits.append(int(change.argmax()))
    assert hits == [2, 6, 7, 12]  # (col - 0.5 - 7.5) / 16: the spot sits on those cells' centres


def test_ensemble_map_is_the_mean_of_its_members_maps():
    a, b = _random_net(4), _random_net(5)
    x = torch.randn(1, 1, 224, 224, generator=torch.Generator().manual_seed(6))
    ens = Ensemble([a, b]).eval()
    with torch.no_grad():
        assert torch.allclose(ens(x), (a(x) + b(x)) / 2, atol=1e-5)
    assert torch.allclose(_signed_map(ens, x), (_signed_map(a, x) + _signed_map(b, x)) / 2, atol=1e-4)
