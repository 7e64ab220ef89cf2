"""``tf.contrib.seq2seq`` API: helpers, decoders, beam search, attention, sequence_loss."""

from rnnkit.seq2seq.attention import (
    AttentionMechanism,
    BahdanauAttention,
    BahdanauMonotonicAttention,
    LuongAttention,
    LuongMonotonicAttention,
    hardmax,
    monotonic_attention,
    safe_cumprod,
)
from rnnkit.seq2seq.attention_wrapper import (
    AlignmentHistory,
    AttentionWrapper,
    AttentionWrapperState,
    compute_attention,
)
from rnnkit.seq2seq.beam_search import (
    BeamSearchDecoder,
    BeamSearchDecoderOutput,
    BeamSearchDecoderState,
    BeamSearchDecoderStateWithHistory,
    FinalBeamSearchDecoderOutput,
    gather_tree,
    gather_tree_from_array,
    length_penalty,
    tile_batch,
)
from rnnkit.seq2seq.decode_graphs import GraphBindings, NotCapturable
from rnnkit.seq2seq.decoder import BasicDecoder, BasicDecoderOutput, Decoder, dynamic_decode
from rnnkit.seq2seq.helper import (
    CustomHelper,
    GreedyEmbeddingHelper,
    Helper,
    InferenceHelper,
    SampleEmbeddingHelper,
    ScheduledEmbeddingTrainingHelper,
    ScheduledOutputTrainingHelper,
    TrainingHelper,
)
from rnnkit.seq2seq.loss import SequenceLoss, sequence_loss

__all__ = [
    "AlignmentHistory",
    "AttentionMechanism",
    "AttentionWrapper",
    "AttentionWrapperState",
    "BahdanauAttention",
    "BahdanauMonotonicAttention",
    "BasicDecoder",
    "BasicDecoderOutput",
    "BeamSearchDecoder",
    "BeamSearchDecoderOutput",
    "BeamSearchDecoderState",
    "BeamSearchDecoderStateWithHistory",
    "CustomHelper",
    "Decoder",
    "FinalBeamSearchDecoderOutput",
    "GraphBindings",
    "GreedyEmbeddingHelper",
    "Helper",
    "InferenceHelper",
    "LuongAttention",
    "LuongMonotonicAttention",
    "NotCapturable",
    "SampleEmbeddingHelper",
    "ScheduledEmbeddingTrainingHelper",
    "ScheduledOutputTrainingHelper",
    "SequenceLoss",
    "TrainingHelper",
    "compute_attention",
    "dynamic_decode",
    "gather_tree",
    "gather_tree_from_array",
    "hardmax",
    "length_penalty",
    "monotonic_attention",
    "safe_cumprod",
    "sequence_loss",
    "tile_batch",
]
