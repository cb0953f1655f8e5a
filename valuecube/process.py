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


M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_MAX = -1, -2, -4  # glibc's <malloc.h> parameter numbers
HEAP_PAD = 512 << 20
"""Bytes by which a batch job's heap grows at a time (address space; pages count only once
written); see :func:`keep_freed_memory`."""


def keep_freed_memory() -> bool:
    """Allocator settings for a batch job: memory freed by one chunk is reused by the next.

    A chunk of 100,000 customers allocates arrays of tens of megabytes and
    frees them before the next chunk. glibc's ``malloc`` serves blocks that
    large by fresh ``mmap`` and returns them on ``free``, so every chunk
    pays the kernel again to map and zero its pages (a sixth of a
    1,000,000-customer job on this project's machines; ``docs/benchmarks.md``).
    Here every block comes from the heap (no ``mmap``), the heap grows
    :data:`HEAP_PAD` at a time and is never trimmed: the job's resident
    memory stays at its peak instead of falling between chunks, which is
    what a process that exits after the job wants, and what a long-running
    server does not (so only ``valuecube score`` calls it).

    Returns whether the settings were applied: ``False`` where the C library
    is not glibc (musl, macOS), whose allocator is left as it is.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (AttributeError, OSError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    settings = ((M_TRIM_THRESHOLD, 2**31 - 1), (M_TOP_PAD, HEAP_PAD), (M_MMAP_MAX, 0))
    return all(mallopt(parameter, value) == 1 for parameter, value in settings)
