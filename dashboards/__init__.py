"""Grafana dashboards built as code (grafana-foundation-sdk); filled in by the dashboards issue."""
