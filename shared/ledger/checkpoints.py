"""Checkpoints at a fixed interval, made by a background thread beside a running service."""

from __future__ import annotations

import logging
import threading

from shared.ledger.signing import Checkpoint
from shared.ledger.store import Ledger

log = logging.getLogger(__name__)


class CheckpointTimer:
    """Signs a checkpoint of ``ledger`` every ``interval`` seconds until stopped.

    With ``only_when_grown`` (the default) a tick that finds the log as long as its latest
    checkpoint makes none: the old one still says all there is to say. A failed tick is
    logged and the timer keeps going, so that one locked database does not end checkpoints.
    """

    def __init__(self, ledger: Ledger, interval: float, *, only_when_grown: bool = True) -> None:
        if interval <= 0:
            raise ValueError("the checkpoint interval must be positive")
        self.ledger = ledger
        self.interval = interval
        self.only_when_grown = only_when_grown
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> Checkpoint | None:
        """Make the checkpoint now if one is due; return it, or None."""
        if self.only_when_grown:
            latest = self.ledger.latest_checkpoint()
            if latest is not None and latest.tree_size == self.ledger.tree_size():
                return None
        return self.ledger.checkpoint()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
            except Exception:
                log.exception("checkpoint of ledger %s failed", self.ledger.tenant)

    def start(self) -> CheckpointTimer:
        if self._thread is not None:
            raise RuntimeError("the checkpoint timer is already running")
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"ledger-checkpoints-{self.ledger.tenant}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def __enter__(self) -> CheckpointTimer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
