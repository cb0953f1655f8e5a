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
