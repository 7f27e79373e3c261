"""User feedback: events from a second topic, stored, joined to records at query time, routed to ``missed``."""
