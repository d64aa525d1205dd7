"""A year of department activity, planned in memory: ``citystream simulate``.

:func:`services.simulator.plan.plan` is pure (no I/O, no topics, no tables, no environment
variables): it reads the catalogue under ``seeds/`` and returns every record the departments
of the five subdistricts would send in a year — valid events, a few corrections, identical
re-sends and invalid records — in the order they are sent. :mod:`services.simulator.run`
prints a plan, or sends it through :class:`services.kafka.producer.Producer` to
``city.<family>.v1``.

Where it is
-----------
==================== ==================================================================
``scenario.py``      the years, the rates (late, re-sent, invalid, corrected) and the
                     vocabulary the families' scenarios are written in — data only
``families/``        one module per event family, named as in ``schemas/``: its
                     generators and its scenario table, ``SIMULATOR = FamilySimulator(...)``
``context.py``       what the generators share: random streams, subdistrict rotation, names
``windows.py``       a scenario's figures → windows of days → project-sized drafts
``milestones.py``    projects reaching milestones (roads started, a hall opened): listed
                     projects with their windows, or so many per window
``indicators.py``    a rate's readings (level, counts, a late report, a correction)
``names.py``         plausible (invented) Chinese project names per subdistrict
``reports.py``       drafts → reported events: ids, report times, over-reports corrected
``faults.py``        identical re-sends and invalid records
``plan.py``          :func:`~services.simulator.plan.plan`: the steps above, in order
``run.py``           ``citystream simulate``: print a plan, or send it
==================== ==================================================================

A new event family adds ``families/<family>.py`` and nothing else here: the plan finds it by
the family's name (:mod:`services.simulator.families`) and refuses to plan without it. Its
steps take ``order`` numbers after the others' (the subdistricts and names are drawn from
streams every family shares, so the draw order is part of the scenario): the other families'
projects keep their sizes, days, subdistricts and names; which events are late, re-sent,
invalid or corrected is drawn again over all of them.

What a plan holds
-----------------
* **Project-sized events**: one event is one estate (20,000–150,000 m² completed or
  connected to heating), one school (500–2,700 places), one car park (50–600 spaces),
  one idle plot of temporary spaces (20–200), one section of heating main (0.4–2.2 km) or
  of water or gas main (0.3–2.5 km), one site greened (3,000–40,000 m²), one village
  moving back, one waterlogging point — always within the models' per-event bounds.
  Projects carry plausible (invented) Chinese names of their subdistrict
  (:mod:`~services.simulator.names`) and are spread over the five subdistricts.
* **Milestones**: a road, venue, renewal project, lighting area, park, school site,
  hospital building, family-bed institution, service station or housing batch reaching a
  milestone is one event (:mod:`~services.simulator.milestones`). A project a pledge names
  is reported under the pledge item's code (``project: science-hall``), its full name in
  ``project_name``; where its subdistrict is not known it is booked zone-wide (``zone``).
* **Rates**: the return rate and the kindergarten inclusive rate are counted at the end of
  a quarter or month (:mod:`~services.simulator.indicators`), zone-wide, with numerator
  and denominator; they are levels, never added up.
* **Seasons**: heating connections concentrate before the heating season starts on
  15 November; school openings and their places come with the 1 September intake (one
  school at the spring term); housing completions follow construction milestones, most
  in the second half; housing starts wait for the end of the winter earthworks ban;
  car parks and temporary spaces peak in spring and summer; waterlogging points are
  repaired before the flood season starts on 1 June; road works start in the construction
  season (March–October) and mains are laid from mid-March to October; planting follows
  spring and autumn; continued school sites are reported in the first weeks of the year.
* **Late reports**: 10% of events are reported 1–30 days after they occurred; the rest
  within hours.
* **Corrections**: three events of a year are over-reported and corrected 7–40 days later
  (``<family>.correction`` on the same subdistrict, project and day, with a reason and an
  approver); original plus correction equals the planned figure. With ``--until``, a
  correction not yet reported by then is not in the plan (its original may be). A
  scenario may fix a report's time or an over-report itself: the 2024 return rate's May
  count is corrected in June, and its June count is sent in August.
* **Duplicates**: ~1% of events are sent a second time, byte for byte — half as a retry
  minutes later, half as a re-export weeks later. The ledger counts them once.
* **Invalid records**: ~0.5% of the events (at least one of each kind): a negative
  quantity, a department writing another family's topic, malformed JSON, an unknown
  district. They are raw bytes for ``send_raw``, each with the reason the worker's
  dead-letter path will give.

Ids are ``ledger_event_id(department, source_ref)`` with ``source_ref`` =
``sim-<seed>:<year>:<event type>:<n>``, so the same year, seed and ``--until`` give the same
bytes, and sending a plan again counts nothing twice.

2022 — the reported achievements, exactly
-----------------------------------------
For every 2022 achievement whose metric an event type produces (``seeds/metrics.yaml``),
the valid events (after dedupe and corrections) sum to the reported value exactly:
2,562,900 m² delivered, 107,700 m² started, 16,000 residents moved back (5 villages),
1,420,000 m² heating area, 11 km heating mains, 10 schools with 18,420 places, 14 car parks
and 12,620 temporary spaces, 20 roads completed, 25 km of water and 13 km of gas mains,
350,000 m² greened, 3 parks, 1 renewal project topped out, 3 medical-insurance stations.
The return rate is a level: counted each quarter, its last 2022 reading (30 December) is
the reported 92%. A car park's spaces come with its ``parking.lot_opened``:
11 of the 14 car parks are temporary (on idle plots) and their spaces are part of the
12,620; 3 are permanent garages (permanent spaces, which 2022 did not report). Drainage has
no 2022 figure: 36 points are repaired, most in March–May.

2024 — the position on 31 August, chosen per pledge
---------------------------------------------------
The 2024 plan is the whole year; ``--until`` keeps what was reported by that date. Events
up to 31 August are reported (and corrected) by 31 August, so with ``--until 2024-08-31``
each pledge stands exactly where it was designed to, by the platform's own rules
(:func:`~services.simulator.plan.pledge_positions` applies :mod:`services.pledges.rules`):

============================================ ================================== ==========
pledge                                       on 2024-08-31                      status
============================================ ================================== ==========
housing-completed-area (759,000 m²)          ~570,500 of 559,350 m² (102%)      on track
housing-started-area (358,000 m²)            ~206,600 of 275,500 m² (75%):      behind
                                             land handovers slipped
housing-return-before-national-day (100%)    96.8% (August); due by 30 Sep, the at risk
                                             trend from 92.1% (January) reaches
                                             100% in January 2025
housing-cooperation-zone-first-batch (1)     preliminary works started in June  achieved
education-school-places (2,160)              0 of 2,092.5: all at the 1 Sep     behind
                                             intake
education-foreign-language-school-opened (1) opens 1 Sep, the window's last day behind
education-primary-schools-built (4)          3 sites continued Jan–Mar, 1       achieved
                                             started in March
education-kindergarten-inclusive-rate (93%)  92.5% (August); the trend from     on track
                                             90.8% reaches 93% in November
roads-municipal-started (6)                  3 of 4.5 expected: three roads     behind
                                             wait for land, start Sep–Oct
renewal-projects-planned (5)                 5 plans approved by 23 August      achieved
renewal-first-phase-started (1)              starts in November; nothing due    on track
facilities-science-hall-opened (1)           opens in December; nothing due     on track
heating-integration-area (1,420,000 m²)      ~509,300 of 979,500 m² (52%):      behind
                                             connections pile up before 15 Nov
lighting-main-roads-lake-alleys (3)          main roads (June), Tianjian Lake   on track
                                             (July): 2 of 2.0; alleys in Nov
drainage-waterlogging-points (2)             both named locations by 28 May     achieved
health-family-bed-institutions (5)           3 (Mar, May, Jul) of 3.3; at that  at risk
                                             pace the fifth joins in 2025
health-outpatient-building-opened (1)        opens in December; nothing due     on track
============================================ ================================== ==========

By 31 December every pledge above is achieved (the inclusive rate ends at 93.4%, the
return rate reaches 100% on 27 September). Metrics without a 2024 pledge get plausible
activity: 8.6 km of heating mains, 18.4 km of water and 9.2 km of gas mains, 9 roads
completed, 4 parks and 310,000 m² greened, 2 medical-insurance stations, 8 car parks and
5,200 further temporary spaces, 3 villages (9,600 residents) moving back before National
Day, 9 more waterlogging points.
"""
