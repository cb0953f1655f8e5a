"""Settings for a valuecube process: the command line's, and the helper processes it starts.

Imports nothing of the project (like :mod:`valuecube.store`), so that any
entry point can call it first.
"""

from __future__ import annotations

import atexit
import gc

GEN0_THRESHOLD = 50_000
"""Allocations between two young-generation garbage collections in a command (Python's default
is 700); see :func:`collect_less`."""


def collect_less() -> None:
    """Garbage-collector settings for a command's process: fewer passes over start-up's objects.

    A command's start-up creates some 300,000 long-lived objects (torch,
    scikit-learn, SciPy, the model). At the default threshold the collector
    walks them again and again while they are being created, about a third
    of the imports' time, and the interpreter's last full collection at exit
    walks them once more (about 0.4 s on this project's machines;
    ``docs/benchmarks.md``). A larger young-generation threshold and
    everything frozen at exit (the last ``atexit`` hook to run) remove most
    of both; garbage cycles are still collected while the command runs.
    Calling it again (commands invoked in one process, as tests do) changes
    nothing more.
    """
    gc.set_threshold(GEN0_THRESHOLD, *gc.get_threshold()[1:])
    atexit.unregister(gc.freeze)
    atexit.register(gc.freeze)
