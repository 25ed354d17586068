"""Tests for stylenorm.nn.norms: registry-driven smoke tests, parity with torch.nn.functional,
gradchecks and the closed-form batch-norm backward."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

from stylenorm.nn.norms import (
    NORM_CLASSES,
    BatchNorm2d,
    GroupNorm2d,
    Identity2d,
    InstanceNorm2d,
    LayerNorm2d,
    NormName,
    SwitchableNorm2d,
    build_norm,
    norm_factory,
    resolve_num_groups,
)

C = 4
DTYPES = [torch.float32, torch.float64]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _randomise_affine(module: torch.nn.Module) -> None:
    with torch.no_grad():
        for name in ("weight", "bias"):
            p = getattr(module, name, None)
            if p is not None:
                p.copy_(torch.randn_like(p))


def _tol(dtype):
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 0}


# --- registry -----------------------------------------------------------------------------


def test_registry_covers_every_name():
    assert set(NORM_CLASSES) == set(NormName)


@pytest.mark.parametrize("name", list(NormName))
@pytest.mark.parametrize("training", [True, False])
def test_forward_backward(name, training):
    norm = build_norm(name, C).train(training)
    x = torch.randn(3, C, 5, 4, requires_grad=True)
    y = norm(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()
    for p in norm.parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all()


@pytest.mark.parametrize("name", list(NormName))
@pytest.mark.parametrize("training", [True, False])
def test_batch_size_one(name, training):
    norm = build_norm(name, C).train(training)
    y = norm(torch.randn(1, C, 3, 3))
    assert y.shape == (1, C, 3, 3) and torch.isfinite(y).all()


def test_batch_norm_single_value_per_channel_raises_in_training():
    norm = BatchNorm2d(C)
    x = torch.randn(1, C, 1, 1)
    with pytest.raises(ValueError, match="more than one value per channel"):
        norm(x)
    assert torch.isfinite(norm.eval()(x)).all()


@pytest.mark.parametrize("name", list(NormName))
def test_wrong_input_shape_is_explained(name):
    norm = build_norm(name, C)
    with pytest.raises(ValueError, match="expects 4 channels; got shape"):
        norm(torch.randn(2, C + 1, 3, 3))
    with pytest.raises(ValueError, match="4-D"):
        norm(torch.randn(C, 3, 3))


@pytest.mark.parametrize("name", ["nope", "batchnorm", "", None])
def test_unknown_name_lists_choices(name):
    with pytest.raises(ValueError, match="unknown norm") as info:
        build_norm(name, C)
    for choice in NormName:
        assert repr(choice.value) in str(info.value)
    with pytest.raises(ValueError, match="choose from"):
        norm_factory(name)


def test_names_resolve_from_strings_and_enum():
    assert isinstance(build_norm("Batch", C), BatchNorm2d)
    assert isinstance(build_norm(NormName.GROUP, C), GroupNorm2d)
    assert isinstance(build_norm("none", C, eps=1e-3), Identity2d)
    make = norm_factory("instance", eps=1e-3)
    layer = make(8)
    assert isinstance(layer, InstanceNorm2d) and layer.num_channels == 8 and layer.eps == 1e-3


def test_group_count_falls_back_to_a_divisor():
    assert resolve_num_groups(64, 32) == 32
    assert resolve_num_groups(48, 32) == 24
    assert resolve_num_groups(3, 32) == 3
    assert resolve_num_groups(7, 4) == 1
    assert GroupNorm2d(6, num_groups=4).num_groups == 3
    with pytest.raises(ValueError, match="num_groups must be a positive int"):
        GroupNorm2d(6, num_groups=0)


@pytest.mark.parametrize(
    "make",
    [lambda: BatchNorm2d(0), lambda: BatchNorm2d(4, momentum=1.5), lambda: BatchNorm2d(4, eps=0),
     lambda: SwitchableNorm2d(4, momentum=None), lambda: Identity2d(-1)],
)
def test_bad_constructor_arguments(make):
    with pytest.raises(ValueError):
        make()


# --- parity with torch.nn.functional --------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("momentum", [0.1, 0.7, None])
def test_batch_norm_matches_functional(dtype, momentum):
    ours = BatchNorm2d(C, momentum=momentum).to(dtype)
    _randomise_affine(ours)
    weight = ours.weight.detach().clone().requires_grad_()
    bias = ours.bias.detach().clone().requires_grad_()
    run_mean, run_var = torch.zeros(C, dtype=dtype), torch.ones(C, dtype=dtype)
    for step in range(1, 4):
        x = (torch.randn(3, C, 4, 5, dtype=dtype) * step + step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        factor = momentum if momentum is not None else 1.0 / step
        ref = F.batch_norm(x_ref, run_mean, run_var, weight, bias, True, factor, ours.eps)
        out = ours(x)
        torch.testing.assert_close(out, ref, **_tol(dtype))
        grad = torch.randn_like(out)
        out.backward(grad)
        ref.backward(grad)
        torch.testing.assert_close(x.grad, x_ref.grad, **_tol(dtype))
    torch.testing.assert_close(ours.weight.grad, weight.grad, **_tol(dtype))
    torch.testing.assert_close(ours.bias.grad, bias.grad, **_tol(dtype))
    torch.testing.assert_close(ours.running_mean, run_mean, **_tol(dtype))
    torch.testing.assert_close(ours.running_var, run_var, **_tol(dtype))
    assert int(ours.num_batches_tracked) == 3
    x = torch.randn(2, C, 3, 3, dtype=dtype)
    ref = F.batch_norm(x, run_mean, run_var, weight, bias, False, 0.0, ours.eps)
    torch.testing.assert_close(ours.eval()(x), ref, **_tol(dtype))


def test_batch_norm_momentum_none_matches_torch_module():
    ours, ref = BatchNorm2d(C, momentum=None), torch.nn.BatchNorm2d(C, momentum=None)
    for _ in range(4):
        x = torch.randn(2, C, 3, 3)
        torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)
    assert ours.state_dict().keys() == ref.state_dict().keys()


def test_batch_norm_without_running_stats_always_uses_the_batch():
    norm = BatchNorm2d(C, track_running_stats=False).eval()
    assert norm.running_mean is None
    x = torch.randn(2, C, 3, 3) * 3 + 1
    ref = F.batch_norm(x, None, None, norm.weight, norm.bias, True, 0.1, norm.eps)
    torch.testing.assert_close(norm(x), ref)


def _layer_norm_ref(x, weight, bias, eps):
    shape = x.shape[1:]
    return F.layer_norm(x, shape, weight[:, None, None].expand(shape),
                        bias[:, None, None].expand(shape), eps)


PARITY = {
    "instance": (lambda: InstanceNorm2d(C),
                 lambda x, w, b, eps: F.instance_norm(x, weight=w, bias=b, eps=eps)),
    "layer": (lambda: LayerNorm2d(C), _layer_norm_ref),
    "group": (lambda: GroupNorm2d(C, num_groups=2),
              lambda x, w, b, eps: F.group_norm(x, 2, w, b, eps)),
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", sorted(PARITY))
def test_per_sample_norms_match_functional(kind, dtype):
    make, reference = PARITY[kind]
    ours = make().to(dtype)
    _randomise_affine(ours)
    weight = ours.weight.detach().clone().requires_grad_()
    bias = ours.bias.detach().clone().requires_grad_()
    x = (torch.randn(3, C, 4, 5, dtype=dtype) * 2 + 0.5).requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    out, ref = ours(x), reference(x_ref, weight, bias, ours.eps)
    torch.testing.assert_close(out, ref, **_tol(dtype))
    grad = torch.randn_like(out)
    out.backward(grad)
    ref.backward(grad)
    for got, want in ((x.grad, x_ref.grad), (ours.weight.grad, weight.grad),
                      (ours.bias.grad, bias.grad)):
        torch.testing.assert_close(got, want, **_tol(dtype))


# --- gradients ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(NormName))
def test_gradcheck_in_training(name):
    norm = build_norm(name, C).double().train()
    _randomise_affine(norm)
    names = [n for n, _ in norm.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in norm.parameters()]
    x = torch.randn(2, C, 3, 3, dtype=torch.float64, requires_grad=True)

    def f(x, *ps):
        return functional_call(norm, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params))


def test_batch_norm_gradient_matches_closed_form():
    norm = BatchNorm2d(C).double()
    _randomise_affine(norm)
    x = torch.randn(3, C, 4, 2, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn_like(x)
    norm(x).backward(upstream)

    m = x.shape[0] * x.shape[2] * x.shape[3]
    dims = (0, 2, 3)
    xd = x.detach()
    mean = xd.mean(dims, keepdim=True)
    sigma = (((xd - mean) ** 2).sum(dims, keepdim=True) / m + norm.eps).sqrt()
    xhat = (xd - mean) / sigma
    dxhat = upstream * norm.weight.detach().view(1, -1, 1, 1)
    dx = (m * dxhat - dxhat.sum(dims, keepdim=True)
          - xhat * (dxhat * xhat).sum(dims, keepdim=True)) / (m * sigma)
    torch.testing.assert_close(x.grad, dx, atol=1e-12, rtol=0)


# --- switchable norm ------------------------------------------------------------------------


def _dominate(norm: SwitchableNorm2d, branch: int) -> SwitchableNorm2d:
    with torch.no_grad():
        for raw in (norm.mean_weight, norm.var_weight):
            raw.zero_()
            raw[branch] = 50.0
    return norm


def test_switchable_starts_as_an_even_mix():
    weights = SwitchableNorm2d(C).mixture_weights()
    assert set(weights) == {"mean", "var"}
    for mix in weights.values():
        assert set(mix) == {"in", "ln", "bn"}
        assert all(v == pytest.approx(1 / 3) for v in mix.values())


@pytest.mark.parametrize("training", [True, False])
def test_switchable_reduces_to_instance_and_layer_norm(training):
    x = torch.randn(3, C, 4, 5) * 2 + 1
    sn_in = _dominate(SwitchableNorm2d(C), 0).train(training)
    sn_ln = _dominate(SwitchableNorm2d(C), 1).train(training)
    _randomise_affine(sn_in)
    _randomise_affine(sn_ln)
    assert sn_in.mixture_weights()["mean"]["in"] == pytest.approx(1.0)
    ref_in = F.instance_norm(x, weight=sn_in.weight, bias=sn_in.bias, eps=sn_in.eps)
    torch.testing.assert_close(sn_in(x), ref_in, atol=1e-5, rtol=1e-4)
    ref_ln = _layer_norm_ref(x, sn_ln.weight, sn_ln.bias, sn_ln.eps)
    torch.testing.assert_close(sn_ln(x), ref_ln, atol=1e-5, rtol=1e-4)


def test_switchable_reduces_to_batch_norm_with_running_stats():
    sn = _dominate(SwitchableNorm2d(C, momentum=0.3), 2)
    _randomise_affine(sn)
    run_mean, run_var = torch.zeros(C), torch.ones(C)
    for step in range(3):
        x = torch.randn(3, C, 4, 5) * (step + 1) + step
        ref = F.batch_norm(x, run_mean, run_var, sn.weight, sn.bias, True, 0.3, sn.eps)
        torch.testing.assert_close(sn(x), ref, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(sn.running_mean, run_mean)
    torch.testing.assert_close(sn.running_var, run_var)
    x = torch.randn(2, C, 3, 3)
    ref = F.batch_norm(x, run_mean, run_var, sn.weight, sn.bias, False, 0.0, sn.eps)
    torch.testing.assert_close(sn.eval()(x), ref, atol=1e-5, rtol=1e-4)


def test_switchable_batch_branch_at_batch_size_one_is_instance_norm():
    sn = _dominate(SwitchableNorm2d(C), 2)
    x = torch.randn(1, C, 4, 4)
    torch.testing.assert_close(sn(x), F.instance_norm(x, eps=sn.eps), atol=1e-5, rtol=1e-4)
    assert torch.isfinite(sn(torch.randn(1, C, 1, 1))).all()
