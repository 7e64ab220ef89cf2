"""``tf.contrib.rnn`` / ``tf.nn`` RNN API: cells, wrappers and drivers."""

from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, start_sequence
from rnnkit.rnn.cells import (
    BasicLSTMCell,
    BasicRNNCell,
    GRUBlockCell,
    GRUBlockCellV2,
    GRUCell,
    LayerNormBasicLSTMCell,
    LSTMBlockCell,
    LSTMCell,
)
from rnnkit.rnn.driver import (
    bidirectional_dynamic_rnn,
    dynamic_rnn,
    reverse_sequence,
    stack_bidirectional_dynamic_rnn,
    static_bidirectional_rnn,
    static_rnn,
)
from rnnkit.rnn.fused import FusedForm, NotFusableError
from rnnkit.rnn.raw import raw_rnn
from rnnkit.rnn.wrappers import (
    DropoutWrapper,
    InputProjectionWrapper,
    MultiRNNCell,
    OutputProjectionWrapper,
    ResidualWrapper,
    reset_dropout_masks,
)
from rnnkit.tensor_array import TensorArray

__all__ = [
    "BasicLSTMCell",
    "BasicRNNCell",
    "DropoutWrapper",
    "FusedForm",
    "GRUBlockCell",
    "GRUBlockCellV2",
    "GRUCell",
    "InputProjectionWrapper",
    "LSTMBlockCell",
    "LSTMCell",
    "LSTMStateTuple",
    "LayerNormBasicLSTMCell",
    "MultiRNNCell",
    "NotFusableError",
    "OutputProjectionWrapper",
    "RNNCell",
    "ResidualWrapper",
    "TensorArray",
    "bidirectional_dynamic_rnn",
    "dynamic_rnn",
    "raw_rnn",
    "reset_dropout_masks",
    "reverse_sequence",
    "start_sequence",
    "stack_bidirectional_dynamic_rnn",
    "static_bidirectional_rnn",
    "static_rnn",
]
