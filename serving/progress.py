"""Feeding and reporting a batch job: the next chunk read ahead, and a progress bar or log lines."""

from __future__ import annotations

import queue
import sys
import threading
from collections.abc import Iterator
from typing import TypeVar, cast

T = TypeVar("T")


def prefetch(items: Iterator[T]) -> Iterator[T]:
    """Yield from ``items``, producing the next item in a background thread meanwhile.

    Reading and validating the next chunk (mostly pyarrow, which releases the
    GIL) then overlaps with scoring the current one. Exceptions are re-raised
    here, in order; at most one item waits, so memory grows by one chunk.
    """
    done = object()
    pending: queue.Queue[tuple[BaseException | None, object]] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        pending.put((None, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            pending.put((None, done))
        except BaseException as exc:  # handed to the consumer
            pending.put((exc, None))

    worker = threading.Thread(target=produce, name="chunk-reader", daemon=True)
    worker.start()
    try:
        while True:
            error, item = pending.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield cast(T, item)
    finally:
        stop.set()


class Progress:
    """A tqdm bar on a terminal, plain log lines (stderr) otherwise."""

    def __init__(self, total: int | None, enabled: bool = True) -> None:
        self.bar = None
        self.enabled = enabled
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=total, unit="rows", unit_scale=True, desc="scoring", file=sys.stderr
            )

    def update(self, rows: int, summary: str, chunk: int) -> None:
        """Report one more chunk of ``rows`` rows (``summary``: the counts so far)."""
        if self.bar is not None:
            self.bar.update(rows)
        elif self.enabled:
            print(f"chunk {chunk}: {summary}", file=sys.stderr, flush=True)

    def close(self) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
