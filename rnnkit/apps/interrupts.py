"""Ctrl-C in the applications: the first SIGINT of a training loop is a stop request
honoured at a step boundary, a second one interrupts at once, and every phase has a named
pause point a test can interrupt (``RNNKIT_PAUSE_AT=phase``)."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["Interrupted", "StopRequest", "pause_point", "stop_on_interrupt"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C: the message says what was kept and how to continue."""


_SIGINTS = [0]


def pause_point(phase: str) -> None:
    """A test hook: with ``RNNKIT_PAUSE_AT=phase`` in the environment, say so on stderr and
    wait (up to a minute) for a signal, so that a test can interrupt this very phase."""
    if os.environ.get("RNNKIT_PAUSE_AT") != phase:
        return
    seen = _SIGINTS[0]
    print(f"rnnkit: paused at {phase}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _SIGINTS[0] == seen:
        time.sleep(0.02)  # the default handler raises KeyboardInterrupt here



class StopRequest:
    """Set by the first Ctrl-C inside :func:`stop_on_interrupt`; a second one aborts."""

    def __init__(self) -> None:
        self.requested = False


@contextlib.contextmanager
def stop_on_interrupt() -> Iterator[StopRequest]:
    """Turn the first SIGINT into a request the training loop honours at a step boundary
    (it then writes a checkpoint); the second SIGINT interrupts at once."""
    stop = StopRequest()
    try:
        previous = signal.getsignal(signal.SIGINT)
    except ValueError:  # not the main thread: nothing to install
        yield stop
        return

    def handler(signum: int, frame: Any) -> None:
        _SIGINTS[0] += 1
        if stop.requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        stop.requested = True

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:
        yield stop
        return
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)
