"""Test-only entry point: ``lookout run`` that kills itself (SIGKILL) after its Nth batch is written, before the commit.

Run as ``python tests/crash_run.py N`` with the same ``LOOKOUT_*`` environment as ``lookout run``. The agent is the
one ``lookout run`` builds; only its checkpoint's committer is wrapped, so production code carries no crash hook.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Mapping

from agent import logs
from agent.app import build_agent
from agent.checkpoint import Committer
from agent.config import load_settings
from agent.source import TopicPartitionKey


class KillBeforeCommit:
    """Passes commits through until the ``n``-th, where it SIGKILLs the process instead."""

    def __init__(self, inner: Committer, n: int) -> None:
        self.inner = inner
        self.n = n
        self.calls = 0

    def commit(self, offsets: Mapping[TopicPartitionKey, int]) -> None:
        """Commit, or die right before the n-th commit (its batch is written: the checkpoint flushed first)."""
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), signal.SIGKILL)
        self.inner.commit(offsets)


def main(argv: list[str]) -> int:
    """Build the agent as ``lookout run`` does, wrap its committer, run until killed (or idle)."""
    settings = load_settings(None)
    logs.configure(settings.log)
    running = build_agent(settings)
    checkpoint = running.agent.checkpoint
    checkpoint.committer = KillBeforeCommit(checkpoint.committer, int(argv[0]))
    running.agent.run(exit_when_idle=float(argv[1]) if len(argv) > 1 else None)
    running.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
