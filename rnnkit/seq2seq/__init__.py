"""``tf.contrib.seq2seq`` API: helpers, decoders, beam search, attention, sequence_loss."""

from rnnkit.seq2seq.loss import sequence_loss

__all__ = ["sequence_loss"]
