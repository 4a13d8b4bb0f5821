"""Child processes that do not outlive the process that started them.

An orphaned broker, worker or renderer keeps ports, CPU and log space for ever (one
orphaned worker wrote 35 MB of log in an hour): the kernel signals the child when its
parent dies, even by SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import signal

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> None:
    """In the child (before exec, or first thing in it): ask the kernel for `sig` when the parent dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def stop_with_parent() -> None:
    """`die_with_parent` with SIGTERM, for a child that stops cleanly on it (a worker)."""
    die_with_parent(signal.SIGTERM)


def die_with(parent: int) -> None:
    """A helper process's initializer: `die_with_parent`, so that the kernel kills it when its
    parent dies, even by SIGKILL (an orphan would wait for work for ever); and exit at once
    if `parent` died before that took effect. Ctrl-C is the parent's to handle (it reaches
    the whole process group: a helper would die printing a traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    if os.getppid() != parent:
        os._exit(0)
