"""Input validation shared by the public entry points.

Every message names the argument, what was expected and what was received.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import numpy as np
import torch

from rnnkit import nest

#: A ``sequence_length`` argument: ``[batch]`` integers as a tensor or a list, or ``None``.
Lengths: TypeAlias = torch.Tensor | Sequence[int] | None


class DTypeError(TypeError, ValueError):
    """A tensor of the wrong dtype.  A ``TypeError``, and a ``ValueError`` as TF raises for
    the same mistakes (code ported from TF catches that)."""


def tensor(name: str, value: Any) -> torch.Tensor:
    """``value`` must be a tensor."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, received {type(value).__name__}")
    return value


def autocast_on(device: torch.device) -> bool:
    """Is ``torch.autocast`` active for tensors on ``device``?"""
    return torch.is_autocast_enabled(device.type)


def _integer_array(value: Any) -> torch.Tensor:
    """``torch.as_tensor(value)`` where integers are meant: an empty Python sequence (batch
    0) has no element to say it is float, so it is read as int64."""
    t = torch.as_tensor(value)
    if t.numel() == 0 and isinstance(value, (list, tuple)):
        t = t.long()
    return t


def on_real_device(name: str, t: torch.Tensor) -> torch.Tensor:
    """``t`` must hold data where rnnkit reads its values (lengths, ids it checks): a
    ``meta`` tensor (shapes only, which otherwise flows through shape computations) is
    refused naming ``name``."""
    if t.device.type == "meta":
        raise ValueError(f"{name} are on the meta device (shapes without data); move them "
                         "to a real device first")
    return t


def as_inputs(name: str, value: Any, dtype: torch.dtype | None = None) -> torch.Tensor:
    """A tensor from a tensor, a numpy array or nested lists (TF accepted numpy).

    Floating array-likes become ``dtype`` (default: PyTorch's default float dtype); integer
    ones stay integers (the cell decides whether it takes them, as in TF); tensors are
    returned as they are.
    """
    if isinstance(value, torch.Tensor):
        return value
    try:
        t = torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be a tensor or an array of numbers, received "
                        f"{type(value).__name__}") from e
    if not (t.is_floating_point() or t.dtype in _INTEGERS):
        raise TypeError(f"{name} must hold numbers, received dtype {t.dtype}")
    if not t.is_floating_point() and dtype is None:
        return t.long()
    return t.to(dtype or torch.get_default_dtype())


_INTEGERS = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


def as_ids(name: str, value: Any, device: torch.device | None = None) -> torch.Tensor:
    """Token ids as an int64 tensor from a tensor, numpy array or list; floats and bools
    are refused whatever their container (TF would not cast them silently either)."""
    try:
        t = value if isinstance(value, torch.Tensor) else _integer_array(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be integer ids, received {type(value).__name__}") from e
    if t.dtype not in _INTEGERS:
        raise TypeError(f"{name} must hold integers, received dtype {t.dtype}")
    return t.to(device=device if device is not None else t.device, dtype=torch.long)


def as_flags(name: str, value: Any, shape: tuple | None = None,
             device: torch.device | None = None) -> torch.Tensor:
    """A bool tensor from a tensor, numpy array or list of bools (a user helper's
    ``finished``); ``shape`` checked when given."""
    try:
        t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value)
    except (TypeError, ValueError, RuntimeError) as e:
        raise TypeError(f"{name} must be booleans, received {type(value).__name__}") from e
    if t.dtype != torch.bool:
        raise TypeError(f"{name} must be booleans, received dtype {t.dtype}")
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, received {tuple(t.shape)}")
    return t if device is None else t.to(device)


def as_flag(name: str, value: Any) -> bool:
    """An on/off switch: ``True``/``False`` or a numpy bool.  Anything else is refused, since
    a truthy stand-in (``"no"``, ``[False]``) would silently mean the opposite."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name} must be a bool, received {value!r}")


def as_number(name: str, value: Any, *, low: float | None = None, low_open: bool = False,
              high: float | None = None, finite: bool = True) -> float:
    """A Python float from an int, a float, a numpy scalar or a 0-d tensor.

    Strings and bools are refused (TypeError); so are NaN, infinity unless ``finite`` is
    False, and values outside ``low`` (excluded if ``low_open``) .. ``high`` (ValueError).
    """
    if isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype != torch.bool:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise TypeError(f"{name} must be a number, received {value!r}")
    number = float(value)
    if low is not None and high is not None:
        rule = f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    else:
        parts = [f"{'>' if low_open else '>='} {low:g}"] if low is not None else []
        parts += [f"<= {high:g}"] if high is not None else []
        parts += ["finite"] if finite else ["a number (not NaN)"]
        rule = " and ".join(parts)
    if (number != number or (finite and abs(number) == float("inf"))
            or (low is not None and (number <= low if low_open else number < low))
            or (high is not None and number > high)):
        raise ValueError(f"{name} must be {rule}, received {value!r}")
    return number


def as_function(name: str, value: Any, optional: bool = True) -> Any:
    """A callable (or None if ``optional``): checked when given, not at the first step
    that calls it."""
    if value is None and optional:
        return None
    if not callable(value):
        what = "a function or None" if optional else "a function"
        raise TypeError(f"{name} must be {what}, received {value!r}")
    return value


_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32,
           "float64": torch.float64, "int8": torch.int8, "int16": torch.int16,
           "int32": torch.int32, "int64": torch.int64, "uint8": torch.uint8,
           "bool": torch.bool}


def as_dtype(name: str, value: Any) -> torch.dtype | None:
    """A ``torch.dtype`` (or None) from a ``torch.dtype``, a numpy dtype (``np.float32``) or
    TF's and Keras's dtype names (``"float32"``, ``"bfloat16"``), as ``tf.as_dtype`` reads
    them.  Python's ``float`` / ``int`` are refused: TF and numpy give them different
    widths."""
    if value is None or isinstance(value, torch.dtype):
        return value
    key = None
    if isinstance(value, str):
        key = value
    elif value not in (float, int, bool, complex):
        try:
            key = np.dtype(value).name
        except TypeError:
            key = None
    dtype = _DTYPES.get(key) if key is not None else None
    if dtype is None:
        raise TypeError(f"{name} must be a dtype (torch.float32, np.float32 or 'float32'), "
                        f"received {value!r}")
    return dtype


def as_float_dtype(name: str, value: Any) -> torch.dtype | None:
    """A floating-point ``torch.dtype`` or None: the dtype of a built-in cell's variables
    (TF's cells refuse others: "RNN cell only supports floating point inputs")."""
    dtype = as_dtype(name, value)
    if dtype is not None and not dtype.is_floating_point:
        raise DTypeError(f"{name} must be a floating-point dtype (RNN cells take floats), "
                         f"received {dtype}")
    return dtype


def as_shape(name: str, value: Any) -> torch.Size:
    """A shape from a sequence of ints >= 0, or one int (a one-dimensional shape, as
    ``tf.TensorShape(4)`` is)."""
    dims = [value] if hasattr(value, "__index__") and not isinstance(value, bool) else value
    try:
        return torch.Size(_shape_dims(dims))
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a shape (ints >= 0), received {value!r}") from None


def _shape_dims(dims: Any) -> list[int]:
    out = [as_int("shape", d) for d in dims]
    if any(d < 0 for d in out):
        raise ValueError("negative dimension")
    return out


def as_count(name: str, value: Any, minimum: int = 1) -> int:
    """A size or count: a Python int from an int or a numpy integer, at least ``minimum``
    (ValueError otherwise; floats and bools are refused whatever their value).  While
    ``torch.onnx`` traces a graph (:mod:`rnnkit.export`), a size read from a traced tensor's
    shape is a 0-d integer tensor: it passes through as it is, so the graph keeps it
    dynamic."""
    if _traced_size(value):
        return value
    if (isinstance(value, (bool, np.bool_)) or not hasattr(value, "__index__")
            or isinstance(value, torch.Tensor) or value.__index__() < minimum):
        rule = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise ValueError(f"{name} must be {rule}, received {value!r}")
    return int(value.__index__())


def _traced_size(value: Any) -> bool:
    """A size read from a tensor's shape while ``torch.onnx`` traces (a 0-d int tensor)."""
    return (isinstance(value, torch.Tensor) and value.dim() == 0 and value.dtype in _INTEGERS
            and torch.jit.is_tracing())


def as_int(name: str, value: Any) -> int:
    """A Python int from an int, a numpy integer or a 0-d integer tensor."""
    if isinstance(value, torch.Tensor):
        if value.dim() != 0:
            raise ValueError(f"{name} must be a scalar, received shape {tuple(value.shape)}")
        if value.dtype not in _INTEGERS:
            raise TypeError(f"{name} must be an integer, received dtype {value.dtype}")
        return int(value)
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise TypeError(f"{name} must be an int, received {value!r}")
    return int(value.__index__())


def tf_loop_options(parallel_iterations: Any, swap_memory: Any) -> None:
    """TF's while-loop settings, accepted for compatibility and unused: still checked, so
    that a misplaced positional argument is caught rather than swallowed."""
    if parallel_iterations is not None:
        as_count("parallel_iterations", parallel_iterations)
    as_flag("swap_memory", swap_memory)


def matrix_depth(owner: str, inputs_shape: Any) -> int:
    """The input depth a cell that takes one ``[batch, depth]`` tensor per step is built
    with; a structure of shapes (structured inputs) is refused by name."""
    if not isinstance(inputs_shape, torch.Size):
        raise TypeError(f"{owner} takes one tensor [batch, depth] as inputs, received a "
                        f"{type(inputs_shape).__name__} of {len(nest.flatten(inputs_shape))} "
                        "tensors")
    return int(inputs_shape[-1])


def as_axis(name: str, value: Any, ndim: int) -> int:
    """An axis of a rank-``ndim`` tensor, negative counting from the end; returned in
    ``[0, ndim)``."""
    axis = as_int(name, value)
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name} must lie in [{-ndim}, {ndim}) for a rank-{ndim} input, "
                         f"received {axis}")
    return axis % ndim


def params_match_inputs(name: str, params: torch.nn.Module | Sequence[torch.Tensor],
                        inputs: torch.Tensor) -> None:
    """A module's (or a list of) floating parameters must share ``inputs``' device, and
    floating ``inputs``' dtype (outside autocast; integer inputs are ids a cell embeds)."""
    named = (params.named_parameters() if isinstance(params, torch.nn.Module)
             else ((f"weights[{i}]", p) for i, p in enumerate(params)))
    for pname, p in named:
        if isinstance(p, torch.nn.UninitializedParameter):
            continue  # takes the inputs' device and dtype when the cell is built
        if p.device != inputs.device:
            raise ValueError(f"{name} parameter {pname} is on {p.device} but inputs are on "
                             f"{inputs.device}; move the cell with .to({str(inputs.device)!r})")
        if (p.is_floating_point() and inputs.is_floating_point()
                and p.dtype != inputs.dtype and not autocast_on(inputs.device)):
            raise TypeError(f"inputs have dtype {inputs.dtype} but {name} parameter {pname} "
                            f"has dtype {p.dtype}; convert one to the other")


def state_matches_inputs(name: str, state: Any, inputs: torch.Tensor) -> None:
    """Every state leaf must share ``inputs``' device and (outside autocast) dtype."""
    for leaf in nest.flatten(state):
        if not isinstance(leaf, torch.Tensor):
            continue
        if leaf.device != inputs.device:
            raise ValueError(f"{name} is on {leaf.device} but inputs are on {inputs.device}")
        if (leaf.is_floating_point() and leaf.dtype != inputs.dtype
                and not autocast_on(inputs.device)):
            raise TypeError(f"{name} has dtype {leaf.dtype} but inputs have dtype "
                            f"{inputs.dtype}")


def rank(name: str, value: torch.Tensor, expected: int | tuple[int, ...], layout: str = "") -> None:
    ranks = (expected,) if isinstance(expected, int) else expected
    if value.dim() not in ranks:
        want = " or ".join(str(r) for r in ranks)
        hint = f" {layout}" if layout else ""
        raise ValueError(
            f"{name} must have rank {want}{hint}, received shape {tuple(value.shape)}"
        )


def rank_at_least(name: str, value: torch.Tensor, minimum: int, layout: str) -> None:
    if value.dim() < minimum:
        raise ValueError(f"{name} must have rank {minimum} {layout} or more, received shape "
                         f"{tuple(value.shape)}")


def floating(name: str, value: torch.Tensor) -> None:
    if not value.is_floating_point():
        raise DTypeError(f"{name} must be a floating-point tensor, received dtype "
                         f"{value.dtype}")


def integer(name: str, value: torch.Tensor) -> None:
    if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
        raise TypeError(f"{name} must be an integer tensor, received dtype {value.dtype}")


def as_lengths(
    name: str, value: Any, batch_size: int, max_time: int | None, device: torch.device
) -> torch.Tensor:
    """Convert a sequence-length argument to a ``[batch]`` int64 tensor and check its range."""
    if isinstance(value, torch.Tensor):
        on_real_device(name, value)
        if value.is_floating_point() or value.dtype == torch.bool:
            raise TypeError(f"{name} must hold integers, received dtype {value.dtype}")
        lengths = value.to(device=device, dtype=torch.long)
    else:
        try:
            raw = _integer_array(value)
        except (TypeError, ValueError, RuntimeError) as e:
            raise TypeError(f"{name} must be a sequence of integers, received {value!r}") from e
        if raw.dtype not in _INTEGERS:
            raise TypeError(f"{name} must hold integers, received {value!r} (dtype {raw.dtype})")
        lengths = raw.to(device=device, dtype=torch.long)
    if lengths.dim() != 1 or lengths.shape[0] != batch_size:
        raise ValueError(
            f"{name} must have shape [batch_size]=[{batch_size}], "
            f"received shape {tuple(lengths.shape)}"
        )
    if lengths.numel():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 0 or (max_time is not None and hi > max_time):
            bound = f"[0, {max_time}]" if max_time is not None else "[0, inf)"
            raise ValueError(f"{name} values must lie in {bound}, received min {lo} and max {hi}")
    return lengths


def as_state(value: Any, like: torch.Tensor | None = None) -> Any:
    """A state with its numpy leaves as tensors (TF accepted numpy): floating arrays take
    ``like``'s dtype and device (the inputs'), others their own dtype."""
    def leaf(x: Any) -> Any:
        if not isinstance(x, np.ndarray):
            return x
        t = torch.as_tensor(x)
        if like is None:
            return t
        return t.to(device=like.device,
                    dtype=like.dtype if t.is_floating_point() and like.is_floating_point()
                    else t.dtype)

    return nest.map_structure(leaf, value)


def batch_of_state(name: str, state: Any, batch_size: int) -> None:
    """Every leaf of a state must have ``batch_size`` rows."""
    for leaf in nest.flatten(state):
        if not isinstance(leaf, torch.Tensor):
            raise TypeError(f"{name} leaves must be tensors, received {type(leaf).__name__}")
        if leaf.dim() < 1 or leaf.shape[0] != batch_size:
            raise ValueError(
                f"{name} leaves must have batch size {batch_size} in dimension 0, "
                f"received shape {tuple(leaf.shape)}"
            )


def state(name: str, size: Any, value: Any, batch_size: int) -> None:
    """``value`` must match a cell's ``state_size`` ``size`` with ``batch_size`` rows.

    ``size`` is an int (``[batch, n]``), a ``torch.Size`` (``[batch, *size]``) or a structure
    of them; a state type may refine the rule for its own fields with a ``check_state``
    classmethod on the type of ``size`` (``LSTMStateTuple``, ``AttentionWrapperState``).
    Messages name the field (``initial_state.cell_state[1].c``)."""
    if _traced_size(size):  # a size read from a traced shape (rnnkit.export): checked as is
        size = int(size)
    hook = getattr(type(size), "check_state", None)
    if hook is not None:
        hook(name, size, value, batch_size)
        return
    if isinstance(size, (int, torch.Size)) and not isinstance(size, bool):
        state_leaf(name, size, value, batch_size)
        return
    state_fields(name, size, value, batch_size)


def state_fields(name: str, size: Any, value: Any, batch_size: int) -> None:
    """The structure of ``value`` against ``size``'s, field by field (see :func:`state`)."""
    if isinstance(size, dict):
        if not isinstance(value, dict) or set(value) != set(size):
            raise ValueError(f"{name} must be a dict with keys {sorted(size)}, received "
                             f"{_describe(value)}")
        for k in size:
            state(f"{name}[{k!r}]", size[k], value[k], batch_size)
        return
    if isinstance(size, (tuple, list)):
        if not isinstance(value, (tuple, list)) or len(value) != len(size):
            what = type(size).__name__ if hasattr(size, "_fields") else "tuple"
            raise ValueError(f"{name}: Expected state to be a {what} of length {len(size)} "
                             f"(as the cell's state_size), received {_describe(value)}")
        fields = getattr(size, "_fields", None)
        for i, (s, v) in enumerate(zip(size, value, strict=True)):
            sub = f"{name}.{fields[i]}" if fields else f"{name}[{i}]"
            state(sub, s, v, batch_size)
        return
    if size is None:
        if value is not None:
            raise ValueError(f"{name} must be None (as the cell's state_size), received "
                             f"{_describe(value)}")
        return
    raise TypeError(f"state_size entries must be ints, torch.Size or structures of them; "
                    f"{name} has {size!r}")


def state_leaf(name: str, size: Any, value: Any, batch_size: int) -> torch.Tensor:
    """One state tensor ``[batch_size, *size]`` (numpy arrays are accepted, as TF did)."""
    if isinstance(value, np.ndarray):
        value = torch.as_tensor(value)
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a tensor [batch, ...], received {_describe(value)}")
    dims = (size,) if isinstance(size, int) else tuple(size)
    if tuple(value.shape) != (batch_size, *dims):
        raise ValueError(f"{name} must have shape {(batch_size, *dims)}, received "
                         f"{tuple(value.shape)}")
    return value


def _describe(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of {len(value)} entries"
    return f"a {type(value).__name__}"
