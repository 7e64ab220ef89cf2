"""Initializers with TF's names and meanings.

TF programs pass initializers to cells (``LSTMCell(initializer=...)``, ``GRUCell(
kernel_initializer=..., bias_initializer=...)``) and to mechanisms and layers.  rnnkit applies
them where TF does: to each variable in TF's own shape (an LSTM kernel is
``[input_depth + num_units, 4 * num_units]``, so ``glorot_uniform`` and ``orthogonal`` see the
fans and the matrix TF sees), then converts the value into the module's PyTorch layout.

Accepted wherever rnnkit takes an initializer (:func:`resolve`):

* the objects made here, TF 1.x's names: :func:`constant_initializer`,
  :func:`random_uniform_initializer`, :func:`random_normal_initializer`,
  :func:`truncated_normal_initializer`, :func:`glorot_uniform_initializer`,
  :func:`glorot_normal_initializer`, :func:`orthogonal_initializer`,
  :func:`variance_scaling_initializer`, :func:`zeros_initializer`, :func:`ones_initializer`,
  and contrib's :func:`xavier_initializer`;
* Keras's string names (``"glorot_uniform"``, ``"glorot_normal"``, ``"orthogonal"``,
  ``"zeros"``, ``"ones"``, ``"random_uniform"``, ``"random_normal"``, ``"truncated_normal"``,
  ``"he_uniform"``, ``"he_normal"``, ``"lecun_uniform"``, ``"lecun_normal"``, ``"identity"``)
  with Keras's default arguments;
* a number (every element that value), or an array / tensor of the variable's TF shape;
* a ``torch.nn.init``-style function that fills a tensor in place (``torch.nn.init.orthogonal_``,
  ``functools.partial(torch.nn.init.uniform_, a=-0.1, b=0.1)``), called on a tensor of the
  variable's TF shape.

Random draws use PyTorch's generator (``torch.manual_seed`` makes them repeatable); a
``seed=`` makes an initializer draw from its own generator instead.  The values are not TF's
random numbers: TF's generator is not reproduced.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

__all__ = [
    "Initializer",
    "constant_initializer",
    "glorot_normal_initializer",
    "glorot_uniform_initializer",
    "ones_initializer",
    "orthogonal_initializer",
    "random_normal_initializer",
    "random_uniform_initializer",
    "resolve",
    "truncated_normal_initializer",
    "variance_scaling_initializer",
    "xavier_initializer",
    "zeros_initializer",
]

Shape = tuple[int, ...]


def _fans(shape: Shape) -> tuple[float, float]:
    """TF's fans: ``[in, out]`` for a matrix; a convolution kernel ``[*window, in, out]``
    multiplies both by the window's size."""
    if not shape:
        return 1.0, 1.0
    if len(shape) == 1:
        return float(shape[0]), float(shape[0])
    window = math.prod(shape[:-2])
    return float(shape[-2] * window), float(shape[-1] * window)


class Initializer:
    """An initial value for a variable of a given TF shape (TF's ``Initializer``).

    ``init(shape, dtype)`` returns a new tensor; subclasses define :meth:`fill`.
    """

    def __init__(self, seed: int | None = None):
        from rnnkit import _checks

        self.seed = None if seed is None else _checks.as_int("seed", seed)

    def _generator(self) -> torch.Generator | None:
        if self.seed is None:
            return None
        gen = torch.Generator()
        gen.manual_seed(self.seed)
        return gen

    def fill(self, t: torch.Tensor, gen: torch.Generator | None) -> None:
        """Write the initial value into ``t`` (float32/64 on the CPU) in place."""
        raise NotImplementedError

    def __call__(self, shape: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
        shape = tuple(int(s) for s in shape)
        t = torch.empty(shape, dtype=torch.float64)
        with torch.no_grad():
            self.fill(t, self._generator())
        return t.to(dtype or torch.get_default_dtype())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if v is not None)
        return f"{type(self).__name__}({args})"


class _Constant(Initializer):
    def __init__(self, value: Any = 0.0):
        super().__init__()
        self.value = value

    def fill(self, t, gen):
        value = torch.as_tensor(np.asarray(self.value), dtype=t.dtype)
        if value.dim() and tuple(value.shape) != tuple(t.shape):
            if value.numel() != t.numel():
                raise ValueError(f"constant_initializer: a value of shape "
                                 f"{tuple(value.shape)} cannot fill a variable of shape "
                                 f"{tuple(t.shape)}")
            value = value.reshape(t.shape)  # TF reshapes a value with the same element count
        t.copy_(value.expand(t.shape))


class _Uniform(Initializer):
    def __init__(self, minval: float = -0.05, maxval: float = 0.05, seed: int | None = None):
        super().__init__(seed)
        self.minval, self.maxval = float(minval), float(maxval)

    def fill(self, t, gen):
        t.uniform_(self.minval, self.maxval, generator=gen)


class _Normal(Initializer):
    def __init__(self, mean: float = 0.0, stddev: float = 0.05, seed: int | None = None,
                 truncated: bool = False):
        super().__init__(seed)
        self.mean, self.stddev, self.truncated = float(mean), float(stddev), truncated

    def fill(self, t, gen):
        if not self.truncated:
            t.normal_(self.mean, self.stddev, generator=gen)
            return
        # TF's truncated normal: redraw values more than two standard deviations out
        t.normal_(0.0, 1.0, generator=gen)
        bad = t.abs() > 2
        while bool(bad.any()):
            t[bad] = torch.randn(int(bad.sum()), dtype=t.dtype, generator=gen)
            bad = t.abs() > 2
        t.mul_(self.stddev).add_(self.mean)


class _VarianceScaling(Initializer):
    def __init__(self, scale: float = 1.0, mode: str = "fan_in",
                 distribution: str = "truncated_normal", seed: int | None = None):
        super().__init__(seed)
        if mode not in ("fan_in", "fan_out", "fan_avg"):
            raise ValueError(f'mode must be "fan_in", "fan_out" or "fan_avg", received {mode!r}')
        if distribution == "normal":  # TF 1.x's spelling of the truncated normal
            distribution = "truncated_normal"
        if distribution not in ("truncated_normal", "untruncated_normal", "uniform"):
            raise ValueError('distribution must be "truncated_normal", "untruncated_normal" or '
                             f'"uniform", received {distribution!r}')
        self.scale, self.mode, self.distribution = float(scale), mode, distribution

    def fill(self, t, gen):
        fan_in, fan_out = _fans(tuple(t.shape))
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        scale = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            limit = math.sqrt(3.0 * scale)
            t.uniform_(-limit, limit, generator=gen)
        elif self.distribution == "untruncated_normal":
            t.normal_(0.0, math.sqrt(scale), generator=gen)
        else:  # TF's constant: the stddev of a unit normal truncated at two stddevs
            _Normal(0.0, math.sqrt(scale) / 0.87962566103423978, truncated=True).fill(t, gen)


class _Orthogonal(Initializer):
    def __init__(self, gain: float = 1.0, seed: int | None = None):
        super().__init__(seed)
        self.gain = float(gain)

    def fill(self, t, gen):
        if t.dim() < 2:
            raise ValueError(f"orthogonal_initializer needs a variable of rank >= 2, received "
                             f"shape {tuple(t.shape)}")
        rows = math.prod(t.shape[:-1])
        cols = t.shape[-1]
        a = torch.randn(max(rows, cols), min(rows, cols), dtype=t.dtype, generator=gen)
        q, r = torch.linalg.qr(a)
        q = q * torch.sign(torch.diagonal(r))  # a uniform distribution over orthogonal ones
        if rows < cols:
            q = q.t()
        t.copy_((self.gain * q).reshape(t.shape))


class _Identity(Initializer):
    def __init__(self, gain: float = 1.0):
        super().__init__()
        self.gain = float(gain)

    def fill(self, t, gen):
        if t.dim() != 2:
            raise ValueError(f"identity initializer needs a matrix, received shape "
                             f"{tuple(t.shape)}")
        t.copy_(self.gain * torch.eye(*t.shape, dtype=t.dtype))


def constant_initializer(value: Any = 0) -> Initializer:
    """``tf.constant_initializer``: every element ``value`` (or the array ``value``)."""
    return _Constant(value)


def zeros_initializer() -> Initializer:
    """``tf.zeros_initializer``."""
    return _Constant(0.0)


def ones_initializer() -> Initializer:
    """``tf.ones_initializer``."""
    return _Constant(1.0)


def random_uniform_initializer(minval: float = 0.0, maxval: float | None = None,
                               seed: int | None = None) -> Initializer:
    """``tf.random_uniform_initializer``: uniform in ``[minval, maxval)`` (TF 1.x's default
    ``maxval`` is 1.0)."""
    return _Uniform(minval, 1.0 if maxval is None else maxval, seed)


def random_normal_initializer(mean: float = 0.0, stddev: float = 1.0,
                              seed: int | None = None) -> Initializer:
    """``tf.random_normal_initializer``."""
    return _Normal(mean, stddev, seed)


def truncated_normal_initializer(mean: float = 0.0, stddev: float = 1.0,
                                 seed: int | None = None) -> Initializer:
    """``tf.truncated_normal_initializer``: a normal whose draws beyond two standard
    deviations are drawn again."""
    return _Normal(mean, stddev, seed, truncated=True)


def variance_scaling_initializer(scale: float = 1.0, mode: str = "fan_in",
                                 distribution: str = "truncated_normal",
                                 seed: int | None = None) -> Initializer:
    """``tf.variance_scaling_initializer`` (fans as TF computes them for the TF shape)."""
    return _VarianceScaling(scale, mode, distribution, seed)


def glorot_uniform_initializer(seed: int | None = None) -> Initializer:
    """``tf.glorot_uniform_initializer``: uniform in ``+-sqrt(6 / (fan_in + fan_out))``; TF's
    default for kernels."""
    return _VarianceScaling(1.0, "fan_avg", "uniform", seed)


def glorot_normal_initializer(seed: int | None = None) -> Initializer:
    """``tf.glorot_normal_initializer``."""
    return _VarianceScaling(1.0, "fan_avg", "truncated_normal", seed)


def xavier_initializer(uniform: bool = True, seed: int | None = None) -> Initializer:
    """``tf.contrib.layers.xavier_initializer``: glorot, uniform or (truncated) normal."""
    return glorot_uniform_initializer(seed) if uniform else glorot_normal_initializer(seed)


def orthogonal_initializer(gain: float = 1.0, seed: int | None = None) -> Initializer:
    """``tf.orthogonal_initializer``: an orthogonal matrix over the variable flattened to
    ``[prod(shape[:-1]), shape[-1]]``, times ``gain``."""
    return _Orthogonal(gain, seed)


#: Keras's names, with Keras's default arguments.
KERAS_NAMES: dict[str, Callable[[], Initializer]] = {
    "zeros": zeros_initializer,
    "ones": ones_initializer,
    "glorot_uniform": glorot_uniform_initializer,
    "glorot_normal": glorot_normal_initializer,
    "orthogonal": orthogonal_initializer,
    "random_uniform": lambda: _Uniform(-0.05, 0.05),
    "random_normal": lambda: _Normal(0.0, 0.05),
    "truncated_normal": lambda: _Normal(0.0, 0.05, truncated=True),
    "he_uniform": lambda: _VarianceScaling(2.0, "fan_in", "uniform"),
    "he_normal": lambda: _VarianceScaling(2.0, "fan_in", "truncated_normal"),
    "lecun_uniform": lambda: _VarianceScaling(1.0, "fan_in", "uniform"),
    "lecun_normal": lambda: _VarianceScaling(1.0, "fan_in", "truncated_normal"),
    "identity": _Identity,
}


class _InPlace(Initializer):
    """A ``torch.nn.init``-style function called on a tensor of the TF shape."""

    def __init__(self, fn: Callable[[torch.Tensor], Any]):
        super().__init__()
        self.fn = fn

    def fill(self, t, gen):
        t32 = t.to(torch.get_default_dtype())
        self.fn(t32)
        t.copy_(t32)


def resolve(name: str, spec: Any) -> Initializer | None:
    """The :class:`Initializer` an argument ``name`` denotes (``None`` stays ``None``: the
    variable's own default applies).  Anything else is refused naming ``name``."""
    if spec is None or isinstance(spec, Initializer):
        return spec
    if isinstance(spec, str):
        make = KERAS_NAMES.get(spec.lower())
        if make is None:
            raise ValueError(f"{name}: unknown initializer {spec!r}; known names: "
                             f"{sorted(KERAS_NAMES)}")
        return make()
    if isinstance(spec, (bool, np.bool_)):
        raise TypeError(f"{name} must be an initializer, a number, an array or a function, "
                        f"received {spec!r}")
    if isinstance(spec, (int, float, np.number, np.ndarray, torch.Tensor, list, tuple)):
        try:
            value = np.asarray(spec.detach().cpu() if isinstance(spec, torch.Tensor) else spec,
                               dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an initializer, a number, an array or a function, "
                            f"received {type(spec).__name__}") from None
        if not np.isfinite(value).all():
            raise ValueError(f"{name} holds values that are not finite")
        return _Constant(value)
    if callable(spec):
        return _InPlace(spec)
    raise TypeError(f"{name} must be an initializer, a number, an array or a function, "
                    f"received {type(spec).__name__}")
