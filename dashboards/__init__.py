"""Grafana dashboards and alert rules as code; see the dashboards issue."""
