"""The root of every error CityStream raises on purpose.

Each package's own errors (``streams.db.DatabaseError``, ``services.kafka`` …) subclass
:class:`CityStreamError`, so one place — the command line — turns any of them into a
message and an exit code, and anything else is a bug.
"""

from __future__ import annotations


class CityStreamError(Exception):
    """Something CityStream says went wrong, in a sentence that says what to do."""
