"""``reviewbot worker``: a Huey consumer that assembles series, reviews them and sweeps."""

from __future__ import annotations

import argparse
import logging
import os
import threading

from reviewbot.config import Settings
from reviewbot.errors import EXIT_OK

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "worker",
        help="run a queue consumer that reviews the series the webhook received",
        description="Consume the Huey queue (SqliteHuey in the state folder, or RedisHuey "
        "when service.redis_url is set), review complete series, re-enqueue work of dead "
        "workers, and run the nightly scan at service.nightly_scan_hour.",
    )
    parser.add_argument(
        "--threads", type=int, help="reviews at once (default: service.worker_threads)"
    )
    parser.add_argument("--name", help="worker name recorded on runs (default: host:pid)")
    parser.add_argument(
        "--no-periodic", action="store_true", help="do not run the periodic (nightly scan) tasks"
    )
    parser.add_argument(
        "--once", action="store_true", help="sweep once, run what is queued, then exit"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    # The 'service' extra (huey, redis): imported when the command runs, so that
    # `reviewbot --help` works without it.
    from reviewbot.service.store import Store
    from reviewbot.service.tasks import TaskQueue, make_huey
    from reviewbot.service.worker import ServiceWorker

    if settings.service.worker_nice > 0:
        # Reviews are CPU-bound (tree-sitter, builds); intake must not wait behind them.
        os.nice(settings.service.worker_nice)
    store = Store.from_settings(settings)
    holder: list[ServiceWorker] = []
    queue = TaskQueue(make_huey(settings), settings, handlers=lambda: holder[0])
    worker = ServiceWorker(store, settings, queue, name=args.name)
    holder.append(worker)
    if args.once:
        return _drain(queue, worker)
    stop = threading.Event()
    sweeper = threading.Thread(
        target=_sweep_loop, args=(worker, settings.service.sweep_interval_s, stop),
        name="sweeper", daemon=True,
    )
    sweeper.start()
    threads = args.threads or settings.service.worker_threads
    log.info("worker %s: queue %s, store %s, %d thread(s)", worker.name, queue.backend,
             store.display_url, threads)
    consumer = queue.huey.create_consumer(
        workers=max(1, threads), worker_type="thread", periodic=not args.no_periodic,
        check_worker_health=True,
    )
    try:
        consumer.run()  # blocks; SIGINT/SIGTERM stop it
    finally:
        stop.set()
        store.close()
    return EXIT_OK


def _sweep_loop(worker: object, interval: float, stop: threading.Event) -> None:
    from reviewbot.service.worker import ServiceWorker  # the 'service' extra

    assert isinstance(worker, ServiceWorker)
    while True:
        try:
            worker.sweep()
        except Exception:  # the store may be briefly unavailable; try again next round
            log.exception("sweep failed")
        if stop.wait(interval):
            return


def _drain(queue: object, worker: object) -> int:
    """--once: sweep, then execute queued tasks in this thread until the queue is empty."""
    # the 'service' extra, as in run()
    from reviewbot.service.tasks import TaskQueue
    from reviewbot.service.worker import ServiceWorker

    assert isinstance(queue, TaskQueue) and isinstance(worker, ServiceWorker)
    worker.sweep()
    while True:
        task = queue.huey.dequeue()
        if task is None:
            break
        queue.huey.execute(task)
    return EXIT_OK
