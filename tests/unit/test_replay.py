"""Message keys of ``lookout replay`` and the demo: where each line lands decides what is read in order."""

from __future__ import annotations

import json

from agent.replay import message_key, tenant_key


class TestKeys:
    """A line's key is stable; keyed by tenant, a stream's records share one partition."""

    def test_message_key_is_the_id_else_a_hash_of_the_line(self) -> None:
        """The record's id when it has one; otherwise the same 32 hex digits for the same bytes."""
        assert message_key(json.dumps({"id": "r-1", "tenant": "acme"}).encode()) == b"r-1"
        assert message_key(b"not json") == message_key(b"not json")
        assert len(message_key(b"not json")) == 32
        assert message_key(b"not json") != message_key(b"not json either")

    def test_tenant_key_groups_a_tenants_records(self) -> None:
        """Two records of one tenant share a key whatever their ids; an untenanted or bad line falls back."""
        a = json.dumps({"id": "r-1", "tenant": "acme"}).encode()
        b = json.dumps({"id": "r-2", "tenant": "acme"}).encode()
        assert tenant_key(a) == tenant_key(b) == b"acme"
        assert tenant_key(json.dumps({"id": "r-3"}).encode()) == b"r-3"
        assert tenant_key(b"[1, 2]") == message_key(b"[1, 2]")
