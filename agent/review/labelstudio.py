"""Label Studio round trip: push queued records as tasks, pull annotations back as ``review_labels`` rows.

The project's labeling config mirrors lookout's label model: per detector a ``confirm``/``reject`` choice
(``verdict_<detector>``), ``severity`` (rating 1-3; none given = 0), ``note``, ``corrected_response`` and a
``preference`` choice (``none``/``corrected``/``original``).

- **Push** is idempotent: every task carries lookout's ``record_id`` in its data, and records that already
  have a task in the project are not sent again.
- **Pull** is idempotent: each annotation becomes one label with ``label_id = ls-<annotation id>-<updated_at>``
  and ``source = 'labelstudio'``; ids already stored are not written again. Editing an annotation in Label
  Studio gives a new ``updated_at``, hence a new, later label (exports use the latest label of a record).

Auth: a legacy API token (``Authorization: Token …``; Label Studio needs legacy tokens enabled) or a
personal access token (a JWT refresh token, exchanged for an access token at ``/api/token/refresh``).
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from agent.errors import LookoutError
from agent.review.rules import DETECTORS
from agent.storage.client import Client
from agent.storage.records import ExportFilter, Label, Row, iter_rows

SOURCE = "labelstudio"
"""``review_labels.source`` of pulled labels."""
TO_NAME = "response"
"""The object tag every control is attached to."""
PREFERENCES = ("none", "corrected", "original")
MAX_SEVERITY = 3
IMPORT_BATCH = 500


class LabelStudioError(LookoutError):
    """Label Studio cannot be reached, refuses the token, or answers something unexpected."""


def label_config(detectors: Iterable[str] = DETECTORS) -> str:
    """The project's labeling config (XML), one confirm/reject choice per detector."""
    parts = [
        "<View>",
        '  <Header value="Earlier turns"/>',
        '  <Text name="history" value="$history"/>',
        '  <Header value="Prompt"/>',
        '  <Text name="prompt" value="$prompt"/>',
        '  <Header value="Response"/>',
        f'  <Text name="{TO_NAME}" value="$response"/>',
        '  <Header value="Retrieved context"/>',
        '  <Text name="context" value="$context"/>',
        '  <Header value="Scores, flags and why it was queued"/>',
        '  <Text name="scores" value="$scores"/>',
    ]
    for name in detectors:
        parts += [
            f'  <Header value="{html.escape(name)}: is the detector right?"/>',
            f'  <Choices name="verdict_{name}" toName="{TO_NAME}" choice="single" showInline="true">',
            '    <Choice value="confirm"/>',
            '    <Choice value="reject"/>',
            "  </Choices>",
        ]
    parts += [
        '  <Header value="Severity (1 minor - 3 severe)"/>',
        f'  <Rating name="severity" toName="{TO_NAME}" maxRating="{MAX_SEVERITY}"/>',
        '  <Header value="Note"/>',
        f'  <TextArea name="note" toName="{TO_NAME}" rows="2" maxSubmissions="1" editable="true"/>',
        '  <Header value="Corrected response"/>',
        f'  <TextArea name="corrected_response" toName="{TO_NAME}" rows="5" maxSubmissions="1" editable="true"/>',
        '  <Header value="Which response is better?"/>',
        f'  <Choices name="preference" toName="{TO_NAME}" choice="single" showInline="true">',
        *(f'    <Choice value="{p}"/>' for p in PREFERENCES),
        "  </Choices>",
        "</View>",
    ]
    return "\n".join(parts)


def _score_text(row: Row) -> str:
    lines = [f"{name}: {'-' if value is None else f'{value:.3f}'}" for name, value in row.scores.items()]
    record = row.record or {}
    lines.append(f"flags: {', '.join(record.get('flags', [])) or '-'}")
    if row.queued is not None:
        lines.append(f"queued for: {', '.join(row.queued.reasons) or '-'} (rules {', '.join(row.queued.rules)})")
    return "\n".join(lines)


def task_data(row: Row) -> dict[str, Any]:
    """A task's ``data``: the texts the config shows, plus lookout's ids (``record_id`` keys idempotency)."""
    record = row.record or {}
    queue = row.label.queue if row.label else row.queued.queues[0] if row.queued else ""
    return {
        "record_id": row.record_id,
        "queue": queue,
        "ts": record.get("ts", ""),
        "tenant": record.get("tenant", ""),
        "model": record.get("model", ""),
        "route": record.get("route", ""),
        "history": "\n\n".join(f"[{t['role']}] {t['content']}" for t in record.get("history", [])),
        "prompt": record.get("prompt", ""),
        "response": record.get("response", ""),
        "context": "\n\n".join(record.get("context", [])),
        "scores": _score_text(row),
    }


def _item(from_name: str, kind: str, value: dict[str, Any]) -> dict[str, Any]:
    return {"id": from_name, "from_name": from_name, "to_name": TO_NAME, "type": kind, "value": value}


def annotation_result(label: Label) -> list[dict[str, Any]]:
    """A lookout label as a Label Studio annotation ``result`` (the inverse of :func:`label_from_annotation`)."""
    result = [_item(f"verdict_{d}", "choices", {"choices": [v]}) for d, v in sorted(label.verdicts.items())]
    if label.severity:
        result.append(_item("severity", "rating", {"rating": label.severity}))
    if label.note:
        result.append(_item("note", "textarea", {"text": [label.note]}))
    if label.corrected_response is not None:
        result.append(_item("corrected_response", "textarea", {"text": [label.corrected_response]}))
    result.append(_item("preference", "choices", {"choices": [label.preference]}))
    return result


def task(row: Row) -> dict[str, Any]:
    """A Label Studio task for a row: ``data``, and the lookout label as an annotation when there is one."""
    out: dict[str, Any] = {"data": task_data(row)}
    if row.label is not None:
        out["annotations"] = [{"result": annotation_result(row.label), "ground_truth": False}]
    return out


@dataclass(frozen=True, slots=True)
class PulledLabel:
    """One ``review_labels`` row made from an annotation."""

    label_id: str
    queue: str
    record_id: str
    annotator: str
    labeled_at: datetime
    verdicts: dict[str, str]
    severity: int
    note: str
    corrected_response: str | None
    preference: str

    COLUMNS = (
        "label_id", "queue", "record_id", "annotator", "labeled_at", "verdicts", "severity", "note",
        "corrected_response", "preference", "source",
    )  # fmt: skip

    def row(self) -> list[Any]:
        """Values in :attr:`COLUMNS` order."""
        return [
            self.label_id, self.queue, self.record_id, self.annotator, self.labeled_at, self.verdicts,
            self.severity, self.note, self.corrected_response, self.preference, SOURCE,
        ]  # fmt: skip


def _parse_ts(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _text(value: Mapping[str, Any]) -> str:
    text = value.get("text", [])
    return "\n".join(str(t) for t in text) if isinstance(text, list) else str(text)


def label_from_annotation(
    task_: Mapping[str, Any], annotation: Mapping[str, Any], users: Mapping[int, str]
) -> PulledLabel | str:
    """The label an annotation stands for, or why it is skipped (``cancelled``, ``not_from_lookout``)."""
    data = task_.get("data") or {}
    record_id = data.get("record_id")
    if not isinstance(record_id, str) or not record_id:
        return "not_from_lookout"
    if annotation.get("was_cancelled"):
        return "cancelled"
    updated = str(annotation.get("updated_at") or annotation.get("created_at"))
    verdicts: dict[str, str] = {}
    severity, note, corrected, preference = 0, "", None, "none"
    for item in annotation.get("result") or []:
        name, value = item.get("from_name", ""), item.get("value") or {}
        choices = value.get("choices") or []
        if name.startswith("verdict_") and name[len("verdict_") :] in DETECTORS and choices:
            if choices[0] in ("confirm", "reject"):
                verdicts[name[len("verdict_") :]] = choices[0]
        elif name == "severity":
            severity = max(0, min(MAX_SEVERITY, int(value.get("rating") or 0)))
        elif name == "note":
            note = _text(value)
        elif name == "corrected_response":
            corrected = _text(value) or None
        elif name == "preference" and choices and choices[0] in PREFERENCES:
            preference = choices[0]
    completed_by = annotation.get("completed_by")
    user_id = completed_by.get("id") if isinstance(completed_by, dict) else completed_by
    return PulledLabel(
        label_id=f"ls-{annotation['id']}-{updated}",
        queue=str(data.get("queue") or SOURCE),
        record_id=record_id,
        annotator=users.get(user_id, f"labelstudio-user-{user_id}") if isinstance(user_id, int) else "labelstudio",
        labeled_at=_parse_ts(updated),
        verdicts=dict(sorted(verdicts.items())),
        severity=severity,
        note=note,
        corrected_response=corrected,
        preference=preference,
    )


class LabelStudio:
    """A small client for the Label Studio REST API (projects, task import, export, users).

    Args:
        url: Base URL, e.g. ``http://127.0.0.1:8080``.
        token: Legacy API token, or a personal access token (JWT refresh token).
        timeout_s: Per-request timeout.
        transport: httpx transport (tests may inject one).
    """

    def __init__(
        self, url: str, token: str, timeout_s: float = 60.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s, transport=transport)
        self._http.headers["Authorization"] = self._auth(token)

    def _auth(self, token: str) -> str:
        if token.count(".") != 2:  # a legacy token; personal access tokens are JWTs
            return f"Token {token}"
        body = self._request("POST", "/api/token/refresh", json={"refresh": token})
        return f"Bearer {body['access']}"

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def __enter__(self) -> LabelStudio:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise LabelStudioError(
                f"Label Studio unreachable at {self.url} ({type(exc).__name__}: {exc}); check --url"
            ) from None
        if response.status_code in (401, 403):
            raise LabelStudioError(
                f"Label Studio at {self.url} refused the token ({response.status_code}); check --token "
                "(a legacy API token needs LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN=true on the server)"
            )
        if response.status_code >= 400:
            detail = " ".join(response.text.split())[:300]
            raise LabelStudioError(f"Label Studio {method} {path} failed ({response.status_code}): {detail}")
        return response.json() if response.content else None

    def projects(self) -> Iterator[dict[str, Any]]:
        """Every project visible to the token."""
        page = 1
        while True:
            body = self._request("GET", "/api/projects", params={"page": page, "page_size": 100})
            results = body["results"] if isinstance(body, dict) else body
            yield from results
            if not isinstance(body, dict) or not body.get("next"):
                return
            page += 1

    def find_project(self, title: str) -> dict[str, Any] | None:
        """The project with this exact title (the lowest id if several)."""
        found = [p for p in self.projects() if p.get("title") == title]
        return min(found, key=lambda p: int(p["id"])) if found else None

    def ensure_project(self, title: str, config: str) -> tuple[int, bool]:
        """Create the project, or update its labeling config; returns its id and whether it was created."""
        project = self.find_project(title)
        if project is None:
            created = self._request("POST", "/api/projects", json={"title": title, "label_config": config})
            return int(created["id"]), True
        if project.get("label_config") != config:
            self._request("PATCH", f"/api/projects/{project['id']}", json={"label_config": config})
        return int(project["id"]), False

    def tasks(self, project_id: int, annotated_only: bool = False) -> list[dict[str, Any]]:
        """Every task of the project with its annotations (Label Studio's JSON export)."""
        params = {"exportType": "JSON", "download_all_tasks": "false" if annotated_only else "true"}
        body = self._request("GET", f"/api/projects/{project_id}/export", params=params)
        return list(body or [])

    def import_tasks(self, project_id: int, tasks: list[dict[str, Any]]) -> int:
        """Import tasks in batches; returns how many Label Studio created."""
        created = 0
        for start in range(0, len(tasks), IMPORT_BATCH):
            body = self._request("POST", f"/api/projects/{project_id}/import", json=tasks[start : start + IMPORT_BATCH])
            created += int(body.get("task_count", 0))
        return created

    def users(self) -> dict[int, str]:
        """User id → email (or username), to name annotators."""
        body = self._request("GET", "/api/users")
        users = body["results"] if isinstance(body, dict) else body
        return {int(u["id"]): str(u.get("email") or u.get("username") or u["id"]) for u in users}


@dataclass
class PushResult:
    """What a push did."""

    project_id: int
    """The Label Studio project."""
    created_project: bool
    """Whether the project was created by this push."""
    sent: int = 0
    """Tasks created."""
    already: int = 0
    """Records that already had a task (not sent again)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Rows not sent, by reason."""


def push(
    client: Client, db: str, ls: LabelStudio, project: str, filt: ExportFilter, detectors: Iterable[str] = DETECTORS
) -> PushResult:
    """Send the filter's records to the project as tasks, skipping records it already has."""
    project_id, created = ls.ensure_project(project, label_config(detectors))
    result = PushResult(project_id=project_id, created_project=created)
    existing = {str((t.get("data") or {}).get("record_id")) for t in ls.tasks(project_id)}
    new: list[dict[str, Any]] = []
    for row in iter_rows(client, db, filt):
        if row.record is None:
            result.skipped["record_missing"] += 1
        elif row.record_id in existing:
            result.already += 1
        else:
            new.append({"data": task_data(row)})
            existing.add(row.record_id)
    result.sent = ls.import_tasks(project_id, new) if new else 0
    return result


@dataclass
class PullResult:
    """What a pull did."""

    project_id: int
    """The Label Studio project."""
    new: int = 0
    """Labels written to ``review_labels``."""
    already: int = 0
    """Annotations whose label was already stored (an earlier pull)."""
    skipped: Counter[str] = field(default_factory=Counter)
    """Annotations not turned into labels, by reason."""


def pull(client: Client, db: str, ls: LabelStudio, project: str) -> PullResult:
    """Store every annotation of the project as a label; labels already stored are not written again."""
    found = ls.find_project(project)
    if found is None:
        raise LabelStudioError(
            f"no Label Studio project named {project!r} at {ls.url}; push to it first (lookout review push-labelstudio)"
        )
    result = PullResult(project_id=int(found["id"]))
    users = ls.users()
    labels: dict[str, PulledLabel] = {}
    for t in ls.tasks(result.project_id, annotated_only=True):
        for annotation in t.get("annotations") or []:
            pulled = label_from_annotation(t, annotation, users)
            if isinstance(pulled, str):
                result.skipped[pulled] += 1
            else:
                labels[pulled.label_id] = pulled
    stored = _stored_label_ids(client, db, list(labels))
    fresh = [lab for lab_id, lab in sorted(labels.items()) if lab_id not in stored]
    result.already = len(labels) - len(fresh)
    if fresh:
        client.insert(f"{db}.review_labels", [lab.row() for lab in fresh], column_names=list(PulledLabel.COLUMNS))
    result.new = len(fresh)
    return result


def _stored_label_ids(client: Client, db: str, label_ids: list[str]) -> set[str]:
    if not label_ids:
        return set()
    rows = client.query(
        f"SELECT DISTINCT label_id FROM {db}.v_review_labels WHERE label_id IN {{ids:Array(String)}}",  # noqa: S608 - db is a validated identifier
        parameters={"ids": label_ids},
    ).result_rows
    return {str(r[0]) for r in rows}
