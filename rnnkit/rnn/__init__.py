"""``tf.contrib.rnn`` / ``tf.nn`` RNN API: cells, wrappers and drivers."""

from rnnkit.lazy import LazyParameterError
from rnnkit.rnn import contrib as _contrib
from rnnkit.rnn.cell import LSTMStateTuple, RNNCell, build, start_sequence
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
from rnnkit.rnn.contrib import *  # noqa: F403  (its __all__, listed once there)
from rnnkit.rnn.driver import (
    bidirectional_dynamic_rnn,
    dynamic_rnn,
    plan,
    reverse_sequence,
    stack_bidirectional_dynamic_rnn,
    stack_bidirectional_rnn,
    static_bidirectional_rnn,
    static_rnn,
    static_state_saving_rnn,
)
from rnnkit.rnn.fused import FusedForm, NotFusableError
from rnnkit.rnn.planner import Plan
from rnnkit.rnn.raw import raw_rnn
from rnnkit.rnn.wrappers import (
    DeviceWrapper,
    DropoutWrapper,
    InputProjectionWrapper,
    MultiRNNCell,
    OutputProjectionWrapper,
    ResidualWrapper,
)
from rnnkit.tensor_array import TensorArray

__all__ = [
    *_contrib.__all__,
    "BasicLSTMCell",
    "BasicRNNCell",
    "DeviceWrapper",
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
    "LazyParameterError",
    "MultiRNNCell",
    "NotFusableError",
    "OutputProjectionWrapper",
    "Plan",
    "RNNCell",
    "ResidualWrapper",
    "TensorArray",
    "bidirectional_dynamic_rnn",
    "build",
    "dynamic_rnn",
    "plan",
    "raw_rnn",
    "reverse_sequence",
    "start_sequence",
    "stack_bidirectional_dynamic_rnn",
    "stack_bidirectional_rnn",
    "static_bidirectional_rnn",
    "static_rnn",
    "static_state_saving_rnn",
]
