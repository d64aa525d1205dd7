"""``citystream worker``: run the faust app until SIGTERM/SIGINT."""

from __future__ import annotations

import gc

import faust

from streams import logs, metrics
from streams.app import TopicIds, create_app
from streams.settings import Settings

# A batch allocates a few objects per record for every one it keeps, and frees nearly all
# of them when it is written: with the default threshold (700) the collector ran a young
# collection every few records and a full one, over every module, app and client object,
# every few batches. Half the Python time of building a batch's rows went to that
# (``make bench``: peers). A young collection scans every young object still alive, and
# with fetches queued and two batches in hand those are a few hundred thousand: at 50,000
# one ran every ~20,000 records and took ~18 ms (0.9 µs per record, timed with
# gc.callbacks over a 300,000-record drain). At 1,000,000 a backlog of 300,000 records
# drained without one. The few cycles batches leave are still collected; what start-up
# made is frozen, never scanned again.
GC_THRESHOLD = (1_000_000, 10, 100)


def run(settings: Settings, *, topic_ids: TopicIds) -> None:
    logs.configure(settings.worker_loglevel)
    metrics.serve(settings.metrics_address, settings.metrics_port)
    app = create_app(settings, topic_ids=topic_ids)
    worker = faust.Worker(app, loglevel=settings.worker_loglevel, quiet=True)
    # No terminal spinner: at the warning level (the default) faust sets the root logger to
    # DEBUG for it and adds a handler that turns on every log call, so each of aiokafka's
    # and faust's debug calls built a record, ~1% of a draining worker's time (py-spy), and
    # its cursor codes landed in the log. A worker runs under a supervisor, not a terminal.
    worker.spinner = None
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    worker.execute_from_commandline()
