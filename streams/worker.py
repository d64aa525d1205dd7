"""``citystream worker``: run the faust app until SIGTERM/SIGINT."""

from __future__ import annotations

import faust

from streams import logs, metrics
from streams.app import TopicIds, create_app
from streams.settings import Settings


def run(settings: Settings, *, topic_ids: TopicIds) -> None:
    logs.configure(settings.worker_loglevel)
    metrics.serve(settings.metrics_address, settings.metrics_port)
    app = create_app(settings, topic_ids=topic_ids)
    worker = faust.Worker(app, loglevel=settings.worker_loglevel, quiet=True)
    worker.execute_from_commandline()
