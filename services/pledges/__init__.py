"""The pledges: how far each of the year's pledges (``seeds/pledges/<year>.yaml``) has come,
and how it is shown.

- :mod:`~services.pledges.rules` — expected, actual, gap, projection and status; pure.
- :mod:`~services.pledges.reads` — the same numbers from PostgreSQL (through
  :mod:`streams.db.pledges`, which holds the SQL).
- :mod:`~services.pledges.store` — the catalogue's pledges and their schedules into PostgreSQL.
- :mod:`~services.pledges.table` — the terminal table (``citystream pledges status``).
- :mod:`~services.pledges.formats`, :mod:`~services.pledges.chart`,
  :mod:`~services.pledges.report` (with its template ``report.html``) — the HTML report
  (``citystream report``); :mod:`~services.pledges.screenshot` — that page in headless
  Chromium.
"""
