"""The command line's process settings: fewer garbage collections over start-up's objects."""

from __future__ import annotations

import subprocess
import sys

from valuecube.process import GEN0_THRESHOLD


def test_a_command_collects_less_and_still_collects_cycles() -> None:
    """After ``collect_less`` the young-generation threshold is raised (older ones kept), cyclic
    garbage is still freed while the process runs, and the process exits cleanly (exit hook)."""
    script = (
        "import gc, weakref\n"
        "before = gc.get_threshold()\n"
        "from valuecube.process import collect_less\n"
        "collect_less(); collect_less()\n"
        "after = gc.get_threshold()\n"
        "class Node: pass\n"
        "a, b = Node(), Node(); a.other, b.other = b, a\n"
        "gone = weakref.ref(a); del a, b\n"
        "kept = [[] for _ in range(3 * after[0])]\n"  # enough live objects for a collection
        "print(before[1:] == after[1:], after[0], gone() is None)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", str(GEN0_THRESHOLD), "True"]


def test_a_batch_job_reuses_freed_memory_instead_of_mapping_it_again() -> None:
    """With ``keep_freed_memory`` a block of 64 MB allocated, written and freed twenty times is
    mapped by the kernel once (about 16,000 page faults), not twenty times (about 330,000)."""
    script = (
        "import resource, sys\n"
        "from valuecube.process import keep_freed_memory\n"
        "applied = keep_freed_memory() if sys.argv[1] == 'keep' else None\n"
        "size = 64 << 20\n"
        "start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for _ in range(20):\n"
        "    block = bytearray(size)\n"
        "    view = memoryview(block)\n"
        "    view[::4096] = bytes([1]) * len(range(0, size, 4096))\n"
        "    del view, block\n"
        "print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)\n"
    )
    runs = {}
    for mode in ("default", "keep"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        applied, faults = done.stdout.split()
        runs[mode] = (applied, int(faults))
    assert runs["keep"][0] == "True"  # glibc, as on every machine this project runs on
    assert runs["keep"][1] < runs["default"][1] / 5
