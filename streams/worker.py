"""``citystream worker``: run the faust app until SIGTERM/SIGINT."""

from __future__ import annotations

import faust

from services.settings import Settings
from streams.app import create_app


def run(settings: Settings) -> None:
    app = create_app(settings)
    worker = faust.Worker(app, loglevel=settings.worker_loglevel, quiet=True)
    worker.execute_from_commandline()
