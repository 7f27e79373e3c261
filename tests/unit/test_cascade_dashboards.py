"""The cascade row of the quality dashboard and the ``lookout-cascade-agreement`` rule follow ``alerts.cascade_*``.

The queries themselves run on seeded chDB in tests/integration/test_dashboard_queries.py.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import yaml

from agent.config import Settings
from dashboards.build import generate

UID = "lookout-cascade-agreement"


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No LOOKOUT_* variable from the outer environment changes what is generated."""
    for name in list(os.environ):
        if name.upper().startswith("LOOKOUT_"):
            monkeypatch.delenv(name)


def built(**alerts: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the cascade rule as provisioned, the quality dashboard) for these ``alerts.*`` overrides."""
    files = generate(Settings().with_overrides(alerts=alerts))
    rules = yaml.safe_load(files["provisioning/alerting/lookout.yaml"])["groups"][0]["rules"]
    return next(r for r in rules if r["uid"] == UID), json.loads(files["dashboards/lookout-quality.json"])


class TestCascadeAlert:
    """The rule fires on disagreement above 100 - agreement_min, per detector with enough audited records."""

    def test_defaults(self, clean_env: None) -> None:
        """0.98 → fires above 2 % disagreement, over 60 min, for detectors with at least 50 audited records."""
        rule, _ = built()
        assert rule["data"][1]["model"]["conditions"][0]["evaluator"] == {"type": "gt", "params": [2.0]}
        assert rule["data"][0]["relativeTimeRange"] == {"from": 3600, "to": 0}
        sql = rule["data"][0]["model"]["rawSql"]
        assert sql.startswith("SELECT detector, ") and sql.endswith(
            "GROUP BY detector HAVING countIf(audited = 1) >= 50"
        )
        assert "detector IN (SELECT DISTINCT" in sql and "{db}" not in sql
        assert rule["labels"] == {"severity": "warning", "team": "ml", "service": "lookout"}
        assert "98%" in rule["annotations"]["summary"] and "scoring.mode: full" in rule["annotations"]["runbook"]

    def test_settings_change_threshold_window_and_minimum(self, clean_env: None) -> None:
        """alerts.cascade_agreement_min, cascade_window_minutes and cascade_min_audited reach the rule."""
        rule, _ = built(cascade_agreement_min=0.95, cascade_window_minutes=180, cascade_min_audited=200)
        assert rule["data"][1]["model"]["conditions"][0]["evaluator"]["params"] == [5.0]
        assert rule["data"][0]["relativeTimeRange"] == {"from": 10800, "to": 0}
        assert rule["data"][0]["model"]["rawSql"].endswith("HAVING countIf(audited = 1) >= 200")
        assert "95%" in rule["annotations"]["summary"] and "180 min" in rule["annotations"]["summary"]

    @pytest.mark.parametrize("value", [0.0, 1.5, -0.1])
    def test_agreement_min_must_be_a_share(self, value: float) -> None:
        """A minimum outside (0, 1] is refused with the setting's name."""
        with pytest.raises(ValueError, match="cascade_agreement_min"):
            Settings().with_overrides(alerts={"cascade_agreement_min": value})


class TestCascadeRow:
    """The quality dashboard ends its own rows with "Cascade", before the feedback and call rows."""

    def test_row_panels_and_agreement_line(self, clean_env: None) -> None:
        """Four panels under the Cascade row; the agreement panel draws alerts.cascade_agreement_min as a line."""
        _, board = built(cascade_agreement_min=0.97)
        titles = [p["title"] for p in board["panels"]]
        start = titles.index("Cascade")
        assert board["panels"][start]["type"] == "row"
        assert titles[start + 1 : start + 6] == [
            "Audit agreement by detector",
            "Escalated scores by detector",
            "Audited records",
            "Audit agreement in the time range",
            "User feedback",
        ]
        agreement = board["panels"][start + 1]
        assert [s["value"] for s in agreement["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 97.0]
        assert agreement["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {"mode": "dashed"}
