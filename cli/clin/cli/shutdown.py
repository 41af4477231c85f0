"""Bounded exits for the ``clin`` process: Ctrl-C and SIGTERM end it within seconds.

The first SIGINT or SIGTERM raises ``KeyboardInterrupt`` in the main thread, so every
command unwinds as for Ctrl-C: the open database write finishes or rolls back, the run is
marked ``interrupted``, the model and the simulator are closed. Then the process exits with
128 + the signal's number, skipping the interpreter's finalization (``Stop.exit_now``).
That cleanup is bounded: after ``CLEANUP_S`` seconds a watchdog thread of C code
(``faulthandler``, which needs no GIL, so a stall inside a C extension cannot hold it)
prints every thread's stack, which says what stalled, and exits. A second signal exits at
once. Either way nothing stored is lost: each write is one SQLite transaction, and one cut
short is rolled back when the file is next opened.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

CLEANUP_S = 8.0
SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Stop:
    """The signal that stopped the command, if one did."""

    signum: int | None = None

    @property
    def exit_code(self) -> int:
        return 128 + (self.signum or signal.SIGINT)

    def exit_now(self) -> None:
        """End a signalled process once the command has unwound (its writes are done, its
        files closed): without the interpreter's finalization, where a library's leftovers
        (a llama.cpp request still decoding, a JVM's threads) could hold the exit."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(self.exit_code)


@contextmanager
def bounded_exit(cleanup_s: float = CLEANUP_S) -> Iterator[Stop]:
    """Turn SIGINT and SIGTERM into ``KeyboardInterrupt`` for the block, with a bound on
    the cleanup that follows (see the module notes). Outside the main thread, where Python
    cannot set handlers, the block runs as it is."""
    stop = Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def on_signal(signum: int, _frame: object) -> None:
        if stop.signum is not None:
            os.write(2, f"clin: {signal.Signals(signum).name} again: exiting now (the "
                        "database keeps every finished write)\n".encode())
            os._exit(128 + signum)
        stop.signum = signum
        faulthandler.dump_traceback_later(cleanup_s, exit=True, file=sys.stderr)
        if signum != signal.SIGINT:
            os.write(2, f"clin: {signal.Signals(signum).name}: stopping\n".encode())
        raise KeyboardInterrupt

    before = {s: signal.signal(s, on_signal) for s in SIGNALS}
    try:
        yield stop
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
