"""contrib.rnn's convolutional LSTMs: ``ConvLSTMCell``, ``Conv1DLSTMCell``,
``Conv2DLSTMCell``, ``Conv3DLSTMCell``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from rnnkit import _checks
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell

# -- ConvLSTMCell -------------------------------------------------------------------------------

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


class ConvLSTMCell(RNNCell):
    """``tf.contrib.rnn.ConvLSTMCell`` (Shi et al. 2015): an LSTM whose products are
    ``SAME``-padded, stride-1 convolutions over the spatial axes.

    ``i, j, f, o = split(conv([x, h], kernel) + biases, 4, axis=-1)``; ``c' = sigmoid(f +
    forget_bias) * c + sigmoid(i) * tanh(j)``; ``h' = tanh(c') * sigmoid(o)``; the output is
    ``h'``, or ``concat([h', x], -1)`` with ``skip_connection``.

    Args:
        conv_ndims: 1, 2 or 3 spatial axes.
        input_shape: the per-step input shape without the batch, ``[*spatial, C]``
            (``conv_ndims + 1`` entries).
        output_channels: ``K``, the channels of ``c`` and ``h``.
        kernel_shape: the convolution window, ``conv_ndims`` ints.
        use_bias: add ``biases [4K]`` (zeros).
        skip_connection: concatenate the inputs to the output (``[*spatial, K + C]``).  The
            state's ``h`` stays ``[*spatial, K]`` (TF also puts the concatenation in the
            state, which its own ``state_size`` then contradicts from the second step on).
        forget_bias: added to ``f``.
        initializers: unused by TF; anything but ``None`` is refused.

    Shapes: inputs ``[batch, *spatial, C]`` (``dynamic_rnn``: ``[batch, time, *spatial,
    C]``); state ``LSTMStateTuple(c, h)``, each ``[batch, *spatial, K]``; output ``[batch,
    *spatial, K (+ C)]``.  TF variables (``conv_lstm_cell/``, ``conv_1d_lstm_cell/``, ...):
    ``kernel [*kernel_shape, C + K, 4K]`` (glorot-uniform), ``biases [4K]``; the input
    convolution of all steps is computed at once (``project_inputs``).
    """

    _fast_paths = ("project_inputs",)

    def __init__(self, conv_ndims: int, input_shape, output_channels: int, kernel_shape,
                 use_bias: bool = True, skip_connection: bool = False,
                 forget_bias: float = 1.0, initializers=None, name: str = "conv_lstm_cell",
                 *, dtype: torch.dtype | None = None):
        super().__init__(name=name, dtype=_checks.as_float_dtype("dtype", dtype))
        self._conv_ndims = _checks.as_count("conv_ndims", conv_ndims)
        if self._conv_ndims not in _CONV:
            raise ValueError(f"conv_ndims must be 1, 2 or 3, received {conv_ndims}")
        shape = [_checks.as_count(f"input_shape[{i}]", d) for i, d in enumerate(input_shape)]
        if len(shape) != self._conv_ndims + 1:
            raise ValueError(f"Invalid input_shape {list(input_shape)} for "
                             f"conv_ndims={conv_ndims}.")
        self._input_shape = shape
        self._output_channels = _checks.as_count("output_channels", output_channels)
        self._kernel_shape = [_checks.as_count(f"kernel_shape[{i}]", k)
                              for i, k in enumerate(kernel_shape)]
        if len(self._kernel_shape) != self._conv_ndims:
            raise ValueError(f"kernel_shape must have {self._conv_ndims} entries, received "
                             f"{list(kernel_shape)}")
        self._use_bias = _checks.as_flag("use_bias", use_bias)
        self._skip_connection = _checks.as_flag("skip_connection", skip_connection)
        self._forget_bias = _checks.as_number("forget_bias", forget_bias)
        if initializers is not None:
            raise ValueError("initializers is unused by TF's ConvLSTMCell; pass None (set "
                             "the initial values through compat.load_tf_variables)")
        self.declare_variables("kernel", *(("biases",) if self._use_bias else ()))

    @property
    def state_size(self):
        size = torch.Size(self._input_shape[:-1] + [self._output_channels])
        return LSTMStateTuple(size, size)

    @property
    def output_size(self):
        extra = self._input_shape[-1] if self._skip_connection else 0
        return torch.Size(self._input_shape[:-1] + [self._output_channels + extra])

    def build(self, inputs_shape):
        if list(inputs_shape[1:]) != self._input_shape:
            raise ValueError(f"{type(self).__name__} inputs must have shape [batch, "
                             f"{', '.join(map(str, self._input_shape))}], received "
                             f"{tuple(inputs_shape)}")
        k = self._output_channels
        self.add_variable("kernel", self._kernel_shape + [self._input_shape[-1] + k, 4 * k])
        if self._use_bias:
            self.add_variable("biases", (4 * k,), initializer=0.0)

    def input_depth_from(self, params):
        kernel = params.get("kernel")
        if kernel is None or kernel.dim() != self._conv_ndims + 2:
            return None
        return int(kernel.shape[-2]) - self._output_channels

    def build_for(self, inputs_shape, dtype=None, device=None):
        if isinstance(inputs_shape, int):  # an input depth (load_state_dict)
            inputs_shape = torch.Size([0, *self._input_shape[:-1], inputs_shape])
        super().build_for(inputs_shape, dtype, device)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """``SAME`` stride-1 convolution of ``[N, *spatial, C]`` with a TF kernel ``[*window,
        C, out]`` -> ``[N, *spatial, out]``."""
        n = self._conv_ndims
        w = weight.permute(n + 1, n, *range(n))
        pads: list[int] = []
        for k in reversed(self._kernel_shape):  # F.pad: last axis first; TF pads after more
            pads += [(k - 1) // 2, k - 1 - (k - 1) // 2]
        y = _CONV[n](F.pad(x.movedim(-1, 1), pads), w)
        return y.movedim(1, -1)

    def _check(self, inputs):
        if not isinstance(inputs, torch.Tensor) or list(inputs.shape[1:]) != self._input_shape:
            got = tuple(inputs.shape) if isinstance(inputs, torch.Tensor) else type(inputs)
            raise ValueError(f"{type(self).__name__} inputs must have shape [batch, "
                             f"{', '.join(map(str, self._input_shape))}], received {got}")

    def project_inputs(self, inputs):
        """``[..., *spatial, C] -> [..., *spatial, 4K]``: the inputs' convolution (with
        ``biases``)."""
        lead = inputs.shape[:inputs.dim() - self._conv_ndims - 1]
        flat = inputs.reshape(-1, *inputs.shape[len(lead):])
        y = self._conv(flat, self.kernel[..., :self._input_shape[-1], :])
        if self._use_bias:
            y = y + self.biases
        return y.reshape(*lead, *y.shape[1:])

    def call(self, inputs, state):
        self._check(inputs)
        return self._step(self.project_inputs(inputs), state, inputs)

    def call_projected(self, projected, state):
        if self._skip_connection:
            raise NotImplementedError("skip_connection needs the inputs themselves")
        return self._step(projected, state, None)

    def hoists_inputs(self) -> bool:
        return not self._skip_connection and super().hoists_inputs()

    def _step(self, projected, state, inputs):
        c, h = state
        z = projected + self._conv(h, self.kernel[..., self._input_shape[-1]:, :])
        i, j, f, o = z.chunk(4, -1)
        new_c = torch.sigmoid(f + self._forget_bias) * c + torch.sigmoid(i) * torch.tanh(j)
        new_h = torch.tanh(new_c) * torch.sigmoid(o)
        out = torch.cat([new_h, inputs], -1) if self._skip_connection else new_h
        return out, LSTMStateTuple(new_c, new_h)


class Conv1DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv1DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=1``
    (inputs ``[batch, width, C]``; scope ``conv_1d_lstm_cell``); the other arguments as
    there, by keyword."""

    def __init__(self, name: str = "conv_1d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=1, name=name, **kwargs)


class Conv2DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv2DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=2``
    (inputs ``[batch, height, width, C]``; scope ``conv_2d_lstm_cell``)."""

    def __init__(self, name: str = "conv_2d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=2, name=name, **kwargs)


class Conv3DLSTMCell(ConvLSTMCell):
    """``tf.contrib.rnn.Conv3DLSTMCell``: :class:`ConvLSTMCell` with ``conv_ndims=3``
    (inputs ``[batch, depth, height, width, C]``; scope ``conv_3d_lstm_cell``)."""

    def __init__(self, name: str = "conv_3d_lstm_cell", **kwargs):
        super().__init__(conv_ndims=3, name=name, **kwargs)
