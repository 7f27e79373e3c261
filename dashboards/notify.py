"""Who gets lookout's alerts: Grafana contact points and a notification policy tree, from ``notify.*`` settings.

Every lookout rule (Grafana's here, Prometheus's in :mod:`dashboards.prometheus_rules`) carries ``service:
lookout``, ``severity`` (``critical`` | ``warning``) and ``team`` labels. The policy tree keeps the org's root
receiver for everything else and routes ``service=lookout`` to each contact point whose teams and severities
match (``continue`` on, so a critical alert can page and post at once); a lookout alert no contact point matches
goes to the first one, so none is dropped.

No credential is ever a setting or written: Slack, PagerDuty and webhook addresses are ``${LOOKOUT_CONTACT_...}``
references that Grafana expands from its environment when it reads the file (:func:`secret_envs` lists them).
"""

from __future__ import annotations

import re
from typing import Any

from agent.config import ContactPointSettings, NotifySettings

SERVICE = "lookout"
"""The ``service`` label every lookout rule carries; the policy tree routes on it."""
GROUP_BY = ["grafana_folder", "alertname"]
"""Grafana's default grouping, kept at the root."""
LOOKOUT_GROUP_BY = ["alertname", "team", "severity"]
"""Grouping under the lookout route: one notification per rule, team and severity."""
GROUP_WAIT = "30s"
GROUP_INTERVAL = "5m"
SEVERITIES = ("critical", "warning")


def env_name(contact: ContactPointSettings, channel: str) -> str:
    """The Grafana environment variable holding a contact point's channel address (``LOOKOUT_CONTACT_ML_SLACK_URL``)."""
    return f"LOOKOUT_CONTACT_{contact.name.upper().replace('-', '_')}_{channel}"


def _ref(contact: ContactPointSettings, channel: str) -> str:
    return "${" + env_name(contact, channel) + "}"


def receivers(contact: ContactPointSettings) -> list[dict[str, Any]]:
    """The contact point's integrations in Grafana's file format (uid ``<name>-<type>``, at most 40 characters)."""
    out: list[dict[str, Any]] = []
    if contact.email:
        out.append({"type": "email", "settings": {"addresses": ";".join(contact.email), "singleEmail": True}})
    if contact.slack:
        out.append({"type": "slack", "settings": {"url": _ref(contact, "SLACK_URL")}})
    if contact.pagerduty:
        out.append({"type": "pagerduty", "settings": {"integrationKey": _ref(contact, "PAGERDUTY_KEY")}})
    if contact.webhook:
        out.append({"type": "webhook", "settings": {"url": _ref(contact, "WEBHOOK_URL"), "httpMethod": "POST"}})
    return [{"uid": f"{contact.name}-{r['type']}", **r, "disableResolveMessage": False} for r in out]


def secret_envs(notify: NotifySettings) -> list[str]:
    """Every environment variable Grafana must set for the generated contact points, sorted."""
    text = repr(contact_points(notify))
    return sorted(set(re.findall(r"\$\{(LOOKOUT_CONTACT_\w+)\}", text)))


def contact_points(notify: NotifySettings) -> list[dict[str, Any]]:
    """The ``contactPoints`` of the provisioning file."""
    return [{"orgId": 1, "name": c.name, "receivers": receivers(c)} for c in notify.contact_points]


def _matcher(label: str, values: tuple[str, ...]) -> list[str]:
    if len(values) == 1:
        return [label, "=", values[0]]
    return [label, "=~", "|".join(re.escape(v) for v in sorted(values))]


def route(contact: ContactPointSettings) -> dict[str, Any]:
    """The contact point's route under the lookout route: its teams and severities, continuing to the next."""
    matchers = []
    if contact.teams:
        matchers.append(_matcher("team", contact.teams))
    if set(contact.severities) != set(SEVERITIES):
        matchers.append(_matcher("severity", tuple(sorted(set(contact.severities)))))
    out: dict[str, Any] = {"receiver": contact.name, "continue": True}
    if matchers:
        out["object_matchers"] = matchers
    return out


def policy(notify: NotifySettings) -> dict[str, Any]:
    """The org's notification policy tree: the root for other alerts, one ``service=lookout`` route for lookout's."""
    first = notify.contact_points[0].name
    lookout = {
        "receiver": first,
        "object_matchers": [["service", "=", SERVICE]],
        "group_by": LOOKOUT_GROUP_BY,
        "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL,
        "repeat_interval": notify.repeat_interval,
        "routes": [route(c) for c in notify.contact_points],
    }
    return {"orgId": 1, "receiver": notify.root_receiver, "group_by": GROUP_BY, "routes": [lookout]}


def provisioning(notify: NotifySettings) -> dict[str, Any] | None:
    """The ``provisioning/alerting/notifications.yaml`` document, or None when no contact point is configured."""
    if not notify.contact_points:
        return None
    doc: dict[str, Any] = {"apiVersion": 1, "contactPoints": contact_points(notify)}
    if notify.policies:
        doc["policies"] = [policy(notify)]
    return doc
