"""Upsert data sources, the folder, dashboards and alert rules into a Grafana through grafana-client.

Idempotent: everything is addressed by a stable uid; what exists is updated, what does not is created. Expected
failures (unreachable, 401, 403, other HTTP errors) become one :class:`PushError` line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

from agent.errors import LookoutError
from dashboards import alerts
from dashboards.build import Bundle, dashboard_json

T = TypeVar("T")


class PushError(LookoutError):
    """Grafana could not be reached or refused a request."""


@dataclass
class PushReport:
    """What a push did, per kind: names created and updated."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)

    def line(self) -> str:
        """One summary line."""
        return f"created {len(self.created)}, updated {len(self.updated)}"


def connect(url: str, token: str | None, timeout_s: float = 10.0) -> Any:
    """A ``grafana_client.GrafanaApi`` for ``url`` (token, or user:password in the URL)."""
    from grafana_client.api import GrafanaApi

    return GrafanaApi.from_url(url, credential=token, timeout=timeout_s)


def _call(url: str, what: str, fn: Callable[[], T], missing_ok: bool = False) -> T | None:
    """Run one API call, turning every expected failure into a one-line :class:`PushError`.

    With ``missing_ok``, a 404 answer returns None (the object does not exist yet).
    """
    from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

    try:
        return fn()
    except GrafanaUnauthorizedError:
        raise PushError(
            f"Grafana at {url} refused the credentials (401 Unauthorized) while {what}; "
            "pass a service-account token with --token"
        ) from None
    except GrafanaClientError as exc:
        if missing_ok and exc.status_code == 404:
            return None
        if exc.status_code == 403:
            raise PushError(
                f"Grafana at {url} denied {what} (403 Forbidden); the token needs the Admin or Editor role"
            ) from None
        raise PushError(f"Grafana at {url} answered {exc.status_code} while {what}: {_short(exc)}") from None
    except GrafanaException as exc:
        if exc.status_code == 0:  # the request never got an HTTP answer
            raise PushError(f"Grafana unreachable at {url} ({_short(exc)}); check --url") from None
        raise PushError(f"Grafana at {url} answered {exc.status_code} while {what}: {_short(exc)}") from None
    except OSError as exc:
        raise PushError(f"Grafana unreachable at {url} ({_short(exc)}); check --url") from None
    except Exception as exc:  # niquests raises its own ConnectionError family for refused or unknown hosts
        name = type(exc).__name__
        if "Connection" in name or "Timeout" in name:
            raise PushError(f"Grafana unreachable at {url} ({_short(exc)}); check --url") from None
        raise


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused"
    return text[:200] or type(exc).__name__


def _exists(url: str, what: str, fn: Callable[[], Any]) -> bool:
    """True if the GET succeeds, False on 404; anything else is a :class:`PushError`."""
    return _call(url, what, fn, missing_ok=True) is not None


def push(api: Any, url: str, b: Bundle) -> PushReport:
    """Upsert everything in ``b``; returns what was created and updated."""
    report = PushReport()
    _call(url, "checking its health", api.health.check)
    for ds in b.datasources:
        uid = ds["uid"]
        if _exists(url, f"reading data source {uid}", partial(api.datasource.get_datasource_by_uid, uid)):
            _call(
                url,
                f"updating data source {uid}",
                partial(api.datasource.update_datasource_by_uid, uid, ds),
            )
            report.updated.append(f"datasource {uid}")
        else:
            _call(url, f"creating data source {uid}", partial(api.datasource.create_datasource, ds))
            report.created.append(f"datasource {uid}")

    folder = b.folder_uid
    if _exists(url, f"reading folder {folder}", lambda: api.folder.get_folder(folder)):
        _call(url, f"updating folder {folder}", lambda: api.folder.update_folder(folder, b.folder, overwrite=True))
        report.updated.append(f"folder {folder}")
    else:
        _call(url, f"creating folder {folder}", lambda: api.folder.create_folder(b.folder, uid=folder))
        report.created.append(f"folder {folder}")

    for board in b.boards:
        uid = board.uid
        existed = _exists(url, f"reading dashboard {uid}", partial(api.dashboard.get_dashboard, uid))
        body = {"dashboard": dashboard_json(board), "folderUid": folder, "overwrite": True, "message": "lookout"}
        _call(url, f"saving dashboard {uid}", partial(api.dashboard.update_dashboard, body))
        (report.updated if existed else report.created).append(f"dashboard {uid}")

    for rule in b.rules:
        body = alerts.api_rule(rule, folder)
        uid = rule.uid
        if _exists(url, f"reading alert rule {uid}", partial(api.alertingprovisioning.get_alertrule, uid)):
            _call(
                url,
                f"updating alert rule {uid}",
                partial(api.alertingprovisioning.update_alertrule, uid, body),
            )
            report.updated.append(f"alert rule {uid}")
        else:
            _call(url, f"creating alert rule {uid}", partial(api.alertingprovisioning.create_alertrule, body))
            report.created.append(f"alert rule {uid}")
    group = {"title": alerts.GROUP, "folderUid": folder, "interval": 60}
    _call(
        url,
        f"setting rule group {alerts.GROUP}",
        lambda: api.alertingprovisioning.update_rule_group(folder, alerts.GROUP, group),
    )
    return report
