"""Conditional normalization: statistics taken from a style, a style index or a class.

Pure functions (they never modify their inputs): `mean_std`, `adain`, `adain_with_stats`,
`modulate` and `wct`. Thin modules with a visible condition argument, ``forward(x, cond)``:
`AdaIN`, `ConditionalInstanceNorm2d`, `ConditionalBatchNorm2d` and `WhiteningColoring`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .norms import BatchNorm2d, InstanceNorm2d, check_nchw
from .statistics import mean_std

__all__ = [
    "AdaIN", "ConditionalBatchNorm2d", "ConditionalInstanceNorm2d", "WhiteningColoring", "adain",
    "adain_with_stats", "mean_std", "modulate", "one_hot_weights", "wct",
]


def _check_pair(content: Tensor, style: Tensor, what: str, names=("content", "style")) -> None:
    """Both NCHW with equal channels; the style batch is N or 1."""
    check_nchw(content, None, f"{what} {names[0]}")
    check_nchw(style, content.shape[1], f"{what} {names[1]}")
    if style.shape[0] not in (1, content.shape[0]):
        raise ValueError(
            f"{what}: {names[1]} batch must be 1 or match the {names[0]} batch "
            f"{content.shape[0]}; got {names[1]} shape {tuple(style.shape)}"
        )


def _as_stats(t: Tensor, n: int, c: int, what: str) -> Tensor:
    """Accept (C,), (Ns, C) or (Ns, C, 1, 1) with Ns in (1, n); return (Ns, C, 1, 1)."""
    s = t.view(1, -1) if t.dim() == 1 else t
    s = s[:, :, None, None] if s.dim() == 2 else s
    if s.dim() != 4 or s.shape[1] != c or s.shape[2:] != (1, 1) or s.shape[0] not in (1, n):
        raise ValueError(
            f"{what} must have shape (C,), (N, C) or (N, C, 1, 1) with C={c} and N in (1, {n}); "
            f"got {tuple(t.shape)}"
        )
    return s


def adain_with_stats(content: Tensor, style_mean: Tensor, style_std: Tensor,
                     eps: float = 1e-5) -> Tensor:
    """AdaIN with precomputed style statistics: (content - mu_c) / sigma_c * sigma_s + mu_s.

    mu_c, sigma_c come from `mean_std`; ``style_mean`` / ``style_std`` may be (C,), (N or 1, C)
    or (N or 1, C, 1, 1).

    Shape:
        (N, C, H, W), stats -> (N, C, H, W)
    """
    check_nchw(content, None, "adain content")
    n, c = content.shape[:2]
    s_mean = _as_stats(style_mean, n, c, "style_mean")
    s_std = _as_stats(style_std, n, c, "style_std")
    c_mean, c_std = mean_std(content, eps)
    return (content - c_mean) / c_std * s_std + s_mean


def adain(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Adaptive instance normalization (Huang & Belongie 2017).

    AdaIN(c, s) = sigma(s) * (c - mu(c)) / sigma(c) + mu(s), moments from `mean_std`.

    Shape:
        content (N, C, H, W), style (N or 1, C, H', W') -> (N, C, H, W)
    """
    _check_pair(content, style, "adain")
    s_mean, s_std = mean_std(style, eps)
    return adain_with_stats(content, s_mean, s_std, eps)


def _sym_power(cov: Tensor, power: float, eps: float) -> Tensor:
    """E diag(clamp(lambda, eps)^power) E^T for a symmetric matrix with eigenpairs (lambda, E)."""
    evals, evecs = torch.linalg.eigh(cov)
    return (evecs * evals.clamp_min(eps).pow(power)) @ evecs.T


def _centred_cov(feat: Tensor, eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(C, L) -> (feat - mean, mean (C, 1), unbiased covariance + eps * I)."""
    mean = feat.mean(dim=1, keepdim=True)
    centred = feat - mean
    cov = centred @ centred.T / (feat.shape[1] - 1)
    return centred, mean, cov + eps * torch.eye(feat.shape[0], dtype=feat.dtype, device=feat.device)


def _match_moments(source: Tensor, target: Tensor, eps: float) -> Tensor:
    """Map (C, L) source features to target's mean and covariance: Ct^1/2 Cs^-1/2 (s - ms) + mt."""
    centred, _, cov_s = _centred_cov(source, eps)
    _, mean_t, cov_t = _centred_cov(target, eps)
    whitened = _sym_power(cov_s, -0.5, eps) @ centred
    return _sym_power(cov_t, 0.5, eps) @ whitened + mean_t


def _per_sample_match(source: Tensor, target: Tensor, eps: float, what: str) -> Tensor:
    """`_match_moments` for each sample of NCHW tensors, in float64; returns source's dtype."""
    _check_pair(source, target, what, names=("source", "target"))
    if not eps > 0:
        raise ValueError(f"{what}: eps must be > 0; got {eps!r}")
    for name, t in (("source", source), ("target", target)):
        if t.shape[2] * t.shape[3] < 2:
            raise ValueError(f"{what} needs at least 2 pixels in the {name}; got {tuple(t.shape)}")
    n, c = source.shape[:2]
    out = [
        _match_moments(source[i].reshape(c, -1).double(),
                       target[i if target.shape[0] > 1 else 0].reshape(c, -1).double(), eps)
        for i in range(n)
    ]
    return torch.stack(out).reshape(source.shape).to(source.dtype)


def wct(content: Tensor, style: Tensor, eps: float = 1e-5) -> Tensor:
    """Whitening and colouring transform (Li et al. 2017), per sample.

    With centred features f_c, f_s (C x HW), unbiased covariances C_c, C_s (+ eps * I) and
    eigenvalues clamped to >= eps (eigh in float64)::

        out = C_s^{1/2} C_c^{-1/2} f_c + mu_s

    so ``out`` has the style's channel mean and covariance. Spatial sizes may differ.

    Shape:
        content (N, C, H, W), style (N or 1, C, H', W') -> (N, C, H, W)
    """
    return _per_sample_match(content, style, eps, "wct")


def modulate(feat: Tensor, content_mean: Tensor, content_std: Tensor, style_mean: Tensor,
             style_std: Tensor, alpha: float = 1.0) -> Tensor:
    """AdaIN with given content statistics, blended with the content by ``alpha``, as one
    scale-and-shift (the fast form of ``alpha * adain_with_stats(...) + (1 - alpha) * f``):

        alpha * ((f - mu_c) / sigma_c * sigma_s + mu_s) + (1 - alpha) * f  =  f * a + b,
        a = alpha * sigma_s / sigma_c + 1 - alpha,   b = alpha * (mu_s - mu_c * sigma_s / sigma_c)

    Shape:
        feat (N, C, h, w); statistics (N or 1, C, 1, 1) -> (N, C, h, w), float32.
    """
    ratio = style_std / content_std
    scale = alpha * ratio + (1.0 - alpha)
    shift = alpha * (style_mean - content_mean * ratio)
    return torch.addcmul(shift, feat.float(), scale)


def one_hot_weights(index: int | Tensor, num: int) -> Tensor:
    """Float one-hot mixing weights: an int gives (num,), an int tensor (N,) gives (N, num)."""
    idx = torch.as_tensor(index)
    if idx.dtype.is_floating_point or idx.dim() > 1 or ((idx < 0) | (idx >= num)).any():
        raise ValueError(f"index must be int(s) in [0, {num}); got {index!r}")
    return torch.nn.functional.one_hot(idx, num).float()


class _ConditionalAffine(nn.Module):
    """Tables ``gamma``, ``beta`` of shape (K, C), one row per condition, mixed by weights."""

    def __init__(self, num_channels: int, num_conditions: int, kind: str) -> None:
        super().__init__()
        for value, what in ((num_channels, "num_channels"), (num_conditions, f"num_{kind}s")):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{what} must be a positive int; got {value!r}")
        self.num_channels, self._kind = num_channels, kind
        self.gamma = nn.Parameter(torch.ones(num_conditions, num_channels))
        self.beta = nn.Parameter(torch.zeros(num_conditions, num_channels))

    def _weights(self, weights: Tensor, n: int) -> Tensor:
        k, kind = self.gamma.shape[0], self._kind
        w = weights[None] if weights.dim() == 1 else weights
        if not weights.is_floating_point() or w.dim() != 2 or w.shape[1] != k \
                or w.shape[0] not in (1, n):
            raise ValueError(
                f"{kind} weights must be a float tensor of shape ({k},) or (N, {k}) with N in "
                f"(1, {n}); got {weights.dtype} {tuple(weights.shape)}. Use one_hot(index, {k}) "
                f"to select a single {kind}"
            )
        return w.to(self.gamma.dtype)

    def _modulate(self, normalized: Tensor, weights: Tensor) -> Tensor:
        """normalized * (w @ gamma) + (w @ beta), per sample."""
        w = self._weights(weights, normalized.shape[0])
        gamma = (w @ self.gamma)[:, :, None, None]
        beta = (w @ self.beta)[:, :, None, None]
        return normalized * gamma + beta

    def _extend(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"number of {self._kind}s to add must be a positive int; got {k!r}")
        with torch.no_grad():
            for name in ("gamma", "beta"):
                old = getattr(self, name).detach()
                new = old.mean(0, keepdim=True).expand(k, -1)
                setattr(self, name, nn.Parameter(torch.cat([old, new])))


class ConditionalInstanceNorm2d(_ConditionalAffine):
    """Conditional instance norm (Dumoulin et al. 2017): one (gamma, beta) row per style.

    y = IN(x) * (w @ gamma) + (w @ beta) with mixing weights w over styles: one-hot selects a
    style, a convex mix interpolates between styles.

    Shape:
        x (N, C, H, W), style_weights (S,) or (N or 1, S) -> (N, C, H, W)
    """

    one_hot = staticmethod(one_hot_weights)

    def __init__(self, num_channels: int, num_styles: int, eps: float = 1e-5) -> None:
        super().__init__(num_channels, num_styles, "style")
        self.norm = InstanceNorm2d(num_channels, eps=eps, affine=False)

    @property
    def num_styles(self) -> int:
        return self.gamma.shape[0]

    def add_styles(self, k: int) -> None:
        """Append k styles initialised to the mean of the existing rows (old rows unchanged).

        The parameters are replaced, so build the optimizer after calling this.
        """
        self._extend(k)

    def forward(self, x: Tensor, style_weights: Tensor) -> Tensor:
        check_nchw(x, self.num_channels, type(self).__name__)
        return self._modulate(self.norm(x), style_weights)


class ConditionalBatchNorm2d(_ConditionalAffine):
    """Conditional batch norm: `BatchNorm2d` without affine, then per-class (gamma, beta).

    y = BN(x) * (w @ gamma) + (w @ beta); BN uses batch statistics in training and running
    statistics in eval.

    Shape:
        x (N, C, H, W), class_weights (K,) or (N or 1, K) -> (N, C, H, W)
    """

    one_hot = staticmethod(one_hot_weights)

    def __init__(self, num_channels: int, num_classes: int, eps: float = 1e-5,
                 momentum: float | None = 0.1) -> None:
        super().__init__(num_channels, num_classes, "class")
        self.norm = BatchNorm2d(num_channels, eps=eps, momentum=momentum, affine=False)

    @property
    def num_classes(self) -> int:
        return self.gamma.shape[0]

    def add_classes(self, k: int) -> None:
        """Append k classes initialised to the mean of the existing rows (old rows unchanged)."""
        self._extend(k)

    def forward(self, x: Tensor, class_weights: Tensor) -> Tensor:
        check_nchw(x, self.num_channels, type(self).__name__)
        return self._modulate(self.norm(x), class_weights)


class AdaIN(nn.Module):
    """Module form of `adain`.

    Shape:
        content (N, C, H, W), style (N or 1, C, H', W') -> (N, C, H, W)
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, content: Tensor, style: Tensor) -> Tensor:
        return adain(content, style, self.eps)


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha (stylisation strength) must be in [0, 1]; got {alpha!r}")
    return alpha


class WhiteningColoring(nn.Module):
    """Module form of `wct`, blended with the content: alpha * wct(c, s) + (1 - alpha) * c.

    Shape:
        content (N, C, H, W), style (N or 1, C, H', W') -> (N, C, H, W)
    """

    def __init__(self, eps: float = 1e-5, alpha: float = 1.0) -> None:
        super().__init__()
        self.eps, self.alpha = eps, _check_alpha(alpha)

    def forward(self, content: Tensor, style: Tensor, alpha: float | None = None) -> Tensor:
        a = self.alpha if alpha is None else _check_alpha(alpha)
        return a * wct(content, style, self.eps) + (1.0 - a) * content
