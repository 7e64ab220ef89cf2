"""Structure utilities: map over nested tuples / NamedTuples / lists / dicts of tensors.

States in rnnkit are nested structures (``LSTMStateTuple`` inside the tuple of a
``MultiRNNCell`` inside an ``AttentionWrapperState``...).  These helpers mirror
``tf.nest`` and are thin wrappers over :mod:`optree`.  ``None`` is an empty node
(it has no leaves), as in ``tf.nest``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optree

__all__ = [
    "assert_same_structure",
    "flatten",
    "is_nested",
    "map_structure",
    "pack_sequence_as",
]


def _is_leaf(x: Any) -> bool:
    # Ints and Sizes inside state_size structures are leaves; torch.Size is a tuple
    # subclass, so keep it whole.
    import torch

    return isinstance(x, torch.Size)


def is_nested(x: Any) -> bool:
    """True when ``x`` is a tuple, list, dict or NamedTuple (not a leaf)."""
    return not optree.treespec_is_leaf(optree.tree_structure(x, is_leaf=_is_leaf)) or x is None


def flatten(structure: Any) -> list[Any]:
    """Leaves of ``structure`` in a deterministic order (depth first)."""
    return optree.tree_leaves(structure, is_leaf=_is_leaf)


def pack_sequence_as(structure: Any, flat: list[Any]) -> Any:
    """Inverse of :func:`flatten`: rebuild ``structure`` with the leaves ``flat``."""
    spec = optree.tree_structure(structure, is_leaf=_is_leaf)
    if spec.num_leaves != len(flat):
        raise ValueError(
            f"pack_sequence_as: structure has {spec.num_leaves} leaves, got {len(flat)} values"
        )
    return optree.tree_unflatten(spec, list(flat))


def map_structure(fn: Callable[..., Any], *structures: Any) -> Any:
    """Apply ``fn`` leaf-wise over structures of identical shape."""
    if not structures:
        raise ValueError("map_structure needs at least one structure")
    for other in structures[1:]:
        assert_same_structure(structures[0], other)
    return optree.tree_map(fn, *structures, is_leaf=_is_leaf)


def assert_same_structure(a: Any, b: Any, what: str = "structure") -> None:
    """Raise ``ValueError`` naming ``what`` when ``a`` and ``b`` nest differently."""
    sa = optree.tree_structure(a, is_leaf=_is_leaf)
    sb = optree.tree_structure(b, is_leaf=_is_leaf)
    if sa != sb:
        # NamedTuple vs plain tuple of the same arity is accepted (TF does too).
        if sa.num_leaves == sb.num_leaves and _loose_equal(a, b):
            return
        raise ValueError(f"{what} does not match: expected {sa}, received {sb}")


def _loose_equal(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Size) or isinstance(b, torch.Size):
        return isinstance(a, torch.Size) and isinstance(b, torch.Size)
    a_seq = isinstance(a, (tuple, list))
    b_seq = isinstance(b, (tuple, list))
    if a_seq != b_seq:
        return False
    if not a_seq:
        if isinstance(a, dict) or isinstance(b, dict):
            return isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys() and all(
                _loose_equal(a[k], b[k]) for k in a
            )
        return (a is None) == (b is None)
    return len(a) == len(b) and all(_loose_equal(x, y) for x, y in zip(a, b, strict=True))
