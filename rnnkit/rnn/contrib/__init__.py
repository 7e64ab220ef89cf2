"""``tf.contrib.rnn``'s cells and wrappers beyond the core ones (the names in
``__all__``): ``EmbeddingWrapper``, ``HighwayWrapper``, LSTM variants (``LayerNormLSTMCell``,
``CoupledInputForgetGateLSTMCell``, ``GLSTMCell``, ``PhasedLSTMCell``, ``NASCell``,
``WeightNormLSTMCell``, the Indy cells), ``LayerNormBasicGRUCell`` (TF pull request
14578), the convolutional LSTMs (``ConvLSTMCell``,
``Conv1DLSTMCell``, ``Conv2DLSTMCell``, ``Conv3DLSTMCell``), ``AttentionCellWrapper``, other
recurrences (``SRUCell``, ``UGRNNCell``, ``IntersectionRNNCell``, ``IndRNNCell``,
``CFNCell``, ``MinimalRNNCell``),
``_Linear``, ``LSTMBlockFusedCell`` and the fused-RNN adaptors, the time-frequency and grid
LSTMs (``TimeFreqLSTMCell``, ``GridLSTMCell``, ``BidirectionalGridLSTMCell``).

Modules: ``_layout`` (what they share), ``wrappers``, ``lstm``, ``recurrent``, ``fused``,
``conv``, ``grid``.

Each cell computes TF 1.15's equations and names its variables as TF does (its
``tf_variables``), so a TF checkpoint loads through :mod:`rnnkit.compat`.  Weights a cell
shares with :class:`~rnnkit.rnn.LSTMCell` are stored in PyTorch's layout as there; the
others are stored in TF's own layout (``kernel [input, cols]``).
"""

from rnnkit.rnn.cells import LAYER_NORM_EPSILON  # noqa: F401  (contrib layers.layer_norm's)
from rnnkit.rnn.contrib._layout import Layout, _Linear, _TFLayoutCell  # noqa: F401
from rnnkit.rnn.contrib.conv import Conv1DLSTMCell, Conv2DLSTMCell, Conv3DLSTMCell, ConvLSTMCell
from rnnkit.rnn.contrib.fused import (
    FusedRNNCell,
    FusedRNNCellAdaptor,
    LSTMBlockFusedCell,
    TimeReversedFusedRNN,
)
from rnnkit.rnn.contrib.grid import BidirectionalGridLSTMCell, GridLSTMCell, TimeFreqLSTMCell
from rnnkit.rnn.contrib.lstm import (
    CoupledInputForgetGateLSTMCell,
    GLSTMCell,
    LayerNormLSTMCell,
    PhasedLSTMCell,
    WeightNormLSTMCell,
)
from rnnkit.rnn.contrib.recurrent import (
    CFNCell,
    IndRNNCell,
    IndyGRUCell,
    IndyLSTMCell,
    IntersectionRNNCell,
    LayerNormBasicGRUCell,
    MinimalRNNCell,
    NASCell,
    SRUCell,
    UGRNNCell,
)
from rnnkit.rnn.contrib.wrappers import AttentionCellWrapper, EmbeddingWrapper, HighwayWrapper

__all__ = [
    "AttentionCellWrapper",
    "BidirectionalGridLSTMCell",
    "CFNCell",
    "Conv1DLSTMCell",
    "Conv2DLSTMCell",
    "Conv3DLSTMCell",
    "ConvLSTMCell",
    "CoupledInputForgetGateLSTMCell",
    "EmbeddingWrapper",
    "FusedRNNCell",
    "FusedRNNCellAdaptor",
    "GLSTMCell",
    "GridLSTMCell",
    "HighwayWrapper",
    "IndRNNCell",
    "IndyGRUCell",
    "IndyLSTMCell",
    "IntersectionRNNCell",
    "LSTMBlockFusedCell",
    "LayerNormBasicGRUCell",
    "LayerNormLSTMCell",
    "MinimalRNNCell",
    "NASCell",
    "PhasedLSTMCell",
    "SRUCell",
    "TimeFreqLSTMCell",
    "TimeReversedFusedRNN",
    "UGRNNCell",
    "WeightNormLSTMCell",
    "_Linear",
]
