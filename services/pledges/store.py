"""The pledge catalogue into PostgreSQL: each pledge of ``seeds/pledges/<year>.yaml`` with its
schedule curve, one row per day, as :mod:`streams.db.pledges` stores them (tables ``pledges``
and ``pledge_schedule``, insert only: a changed pledge is a new version, an unchanged one
stays). ``citystream pledges load`` and the demo call :func:`load`.
"""

from __future__ import annotations

from typing import Any

import psycopg

from schemas.catalogue import Catalogue, Pledge
from schemas.errors import CityStreamError
from schemas.seeds import SOURCES_DIR, load_catalogue
from services.pledges.rules import pledge_year, schedule_curve, selected
from streams.db.pledges import PledgeRecord, StoreReport, store_pledges


def validated_catalogue() -> Catalogue:
    """The catalogue, with every quotation checked against the sources when they are here."""
    return load_catalogue(sources=SOURCES_DIR if SOURCES_DIR.is_dir() else None)


def pledge_record(pledge: Pledge, catalogue: Catalogue) -> PledgeRecord:
    return PledgeRecord(
        id=pledge.id,
        year=pledge_year(pledge),
        title_zh=pledge.title_zh,
        title_en=pledge.title_en,
        metric=pledge.metric,
        target=pledge.target,
        unit=pledge.unit,
        start=pledge.start,
        deadline=pledge.deadline,
        department=pledge.owner,
        district=None if pledge.district is None else pledge.district.value,
        schedule=pledge.schedule.model_dump(mode="json"),
        progress_from=pledge.progress_from,
        items=tuple(item.code for item in pledge.items),
        event_types=catalogue.metric(pledge.metric).event_types,
        source_file=pledge.source.file,
        source_quote=pledge.source.quote,
        measurable=pledge.measurable,
        curve=schedule_curve(pledge),
    )


class NoPledges(CityStreamError, ValueError):
    """The catalogue has no pledge for the year asked for."""


def load(
    conn: psycopg.Connection[Any], *, catalogue: Catalogue, year: int | None = None
) -> StoreReport:
    """Store new and changed pledges (of ``year``) with their schedule; unchanged ones stay."""
    pledges = selected(catalogue, year)
    if not pledges:
        raise NoPledges(f"no pledges for {year} in seeds/pledges/ (add seeds/pledges/{year}.yaml)")
    return store_pledges(conn, [pledge_record(pledge, catalogue) for pledge in pledges])
