"""Grafana dashboards and alert rules as code (``citystream dashboards build`` / ``push``).

``query`` the PostgreSQL query type; ``sqlparts`` shared SQL fragments and display units;
``panels`` panel defaults and the grid layout; one module per dashboard (``pledges``,
``domain`` — one board per event family, from its declaration in ``schemas/`` —,
``pipeline``, ``audit``); ``alerts`` the alert rules; ``build`` writes the files; ``push``
sends them to a running Grafana; ``macros`` expands Grafana's PostgreSQL macros for tests;
``mock`` draws a layout picture.
"""
