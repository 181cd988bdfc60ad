"""``tsprov serve --workers N``: N processes on one listening socket, each draining on SIGTERM.

uvicorn's own multi-process supervisor runs plain servers, which would close the port at
once on SIGTERM; each worker here is the same draining server a single process runs. The
parent binds the socket, starts the workers, forwards SIGTERM/SIGINT to them, replaces a
worker that dies unexpectedly, and exits once every worker has drained.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from types import FrameType

import uvicorn

log = logging.getLogger("tsprov.workers")
# A worker that dies this soon after starting is broken, not unlucky: restarting it would
# only repeat the failure.
STARTUP_GRACE_SECONDS = 5.0


def _run_worker(host: str, port: int, listening: socket.socket, stopping: EventType) -> None:
    """One worker process: the app built from this process's own TSPROV_* settings."""
    # The worker started with SIGINT ignored (WorkerSupervisor._start): a Ctrl-C while it was
    # starting is the parent's to act on, which sets ``stopping`` before it forwards one.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # A Ctrl-C reaches every worker (a terminal signals the whole group). Before uvicorn
    # takes the signal over, it stops a worker that has served nothing yet. After, uvicorn
    # drains, then raises the signal again so that the process ends as the signal would end
    # it: a KeyboardInterrupt, and a traceback per worker. Either way there is nothing to say.
    with contextlib.suppress(KeyboardInterrupt):
        if stopping.is_set():
            return
        from service.ops.server import DrainingServer, uvicorn_config
        from service.settings import Settings

        settings = Settings()
        config = uvicorn_config(settings, host, port)
        DrainingServer(config, settings.shutdown_drain_seconds).run(sockets=[listening])


@dataclass
class _Worker:
    process: BaseProcess
    started: float


class WorkerSupervisor:
    """Starts ``count`` workers and keeps them running until told to stop."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self._host, self._port, self._count = host, port, count
        self._spawn = multiprocessing.get_context("spawn")
        self._stopping = threading.Event()
        # The same news for the workers still starting, which ignore SIGINT until they can
        # take it without a traceback.
        self._stopping_workers = self._spawn.Event()
        self._signal = signal.SIGTERM
        self._workers: list[_Worker] = []

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT and every worker has drained; 1 if a worker was broken."""
        # The workers build their own app; this config only binds the shared socket.
        listening = uvicorn.Config(app="", host=self._host, port=self._port).bind_socket()
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._workers = [self._start(listening) for _ in range(self._count)]
        log.info("serving with %d workers on %s:%d", self._count, self._host, self._port)
        broken = False
        while not self._stopping.wait(0.5):
            broken = self._replace_dead(listening)
            if broken:
                self._stopping.set()
        self._forward(self._signal)
        for worker in self._workers:
            worker.process.join()
        listening.close()
        if broken:
            return 1
        # Stopped by Ctrl-C: the status a single process ends with, as any program does.
        return 128 + signal.SIGINT if self._signal == signal.SIGINT else 0

    def _start(self, listening: socket.socket) -> _Worker:
        process = self._spawn.Process(
            target=_run_worker,
            args=(self._host, self._port, listening, self._stopping_workers),
            name="tsprov-worker",
        )
        # An ignored signal stays ignored in the new process. Python's own handler would turn
        # a Ctrl-C during the worker's imports into a traceback, before any code of ours runs.
        # (A blocked one would not do: the new process starts with it unblocked.) The parent
        # ignores SIGINT too for the millisecond a start takes.
        handler = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.start()
        finally:
            signal.signal(signal.SIGINT, handler)
        return _Worker(process, time.monotonic())

    def _on_signal(self, sig: int, _frame: FrameType | None) -> None:
        if self._stopping.is_set():
            # A second signal: an operator wants out now; the workers treat it the same way.
            self._forward(sig)
            return
        self._signal = signal.Signals(sig)
        self._stopping_workers.set()
        self._stopping.set()

    def _forward(self, sig: int) -> None:
        for worker in self._workers:
            pid = worker.process.pid
            if worker.process.is_alive() and pid is not None:
                with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                    os.kill(pid, sig)

    def _replace_dead(self, listening: socket.socket) -> bool:
        """Restart workers that died; True when one died at start-up (the app is broken)."""
        for index, worker in enumerate(self._workers):
            if worker.process.is_alive() or self._stopping.is_set():
                continue
            exitcode = worker.process.exitcode
            if time.monotonic() - worker.started < STARTUP_GRACE_SECONDS:
                log.error("a worker failed at start-up (exit %s); stopping", exitcode)
                return True
            log.warning(
                "worker %s exited (exit %s); starting another", worker.process.pid, exitcode
            )
            self._workers[index] = self._start(listening)
        return False
