"""Near-duplicate responses across a stream: the same answer given to different prompts.

A model stuck on a canned answer (a template, a cached reply served to the wrong user, a fine-tune that
collapsed) gives one response to many prompts. No single record shows it; a window of the stream does.
:class:`NearDuplicates` keeps the last ``window`` (prompt, response) embedding pairs of one stream in a ring
buffer and scores each new record by the highest cosine similarity between its response and a remembered
response whose *prompt* was different (prompt cosine below ``prompt_max_similarity``): the same question asked
twice may fairly get the same answer.

Memory is bounded: ``2 * window * dim * 4`` bytes per stream (300 KB for 200 MiniLM pairs). Records are scored
in order, each against the window as it was before it (records earlier in the same batch included), then
added. Responses shorter than ``min_chars`` are neither scored (None) nor remembered: "Yes." or "Done." to
different prompts is not a stuck model. ``remember`` refills the window from stored pairs without scoring them;
``score`` scores without remembering (a record seen once already).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt


class NearDuplicates:
    """Max cosine of each response to a recent response of a different prompt, per stream.

    Args:
        window: Recent (prompt, response) pairs remembered.
        prompt_max_similarity: Remembered pairs whose prompt is at least this similar to the new prompt are
            skipped (the same question).
        min_chars: Shorter responses are not scored or remembered.
    """

    def __init__(self, window: int = 200, prompt_max_similarity: float = 0.9, min_chars: int = 64) -> None:
        if window < 1:
            raise ValueError("window must be at least 1")
        if not 0 < prompt_max_similarity <= 1:
            raise ValueError("prompt_max_similarity must be in (0, 1]")
        self.window = window
        self.prompt_max_similarity = prompt_max_similarity
        self.min_chars = min_chars
        self.reset()

    def __repr__(self) -> str:
        return (
            f"NearDuplicates(window={self.window}, prompt_max_similarity={self.prompt_max_similarity}, "
            f"min_chars={self.min_chars})"
        )

    def reset(self) -> None:
        """Forget every remembered pair."""
        self._prompts: npt.NDArray[np.float32] | None = None
        self._responses: npt.NDArray[np.float32] | None = None
        self._filled = 0
        self._next = 0

    def __len__(self) -> int:
        return self._filled

    def update(
        self, prompts: npt.ArrayLike, responses: npt.ArrayLike, response_chars: Sequence[int]
    ) -> list[float | None]:
        """Score each record (unit-row embeddings, in stream order), then remember it; None when not scored."""
        return self._each(prompts, responses, response_chars, score=True, remember=True)

    def score(
        self, prompts: npt.ArrayLike, responses: npt.ArrayLike, response_chars: Sequence[int]
    ) -> list[float | None]:
        """Score each record against the window as it is, remembering none (records seen once already)."""
        return self._each(prompts, responses, response_chars, score=True, remember=False)

    def remember(self, prompts: npt.ArrayLike, responses: npt.ArrayLike, response_chars: Sequence[int]) -> None:
        """Remember records without scoring them (a window rebuilt from stored pairs, in stream order)."""
        self._each(prompts, responses, response_chars, score=False, remember=True)

    def _each(
        self,
        prompts: npt.ArrayLike,
        responses: npt.ArrayLike,
        response_chars: Sequence[int],
        *,
        score: bool,
        remember: bool,
    ) -> list[float | None]:
        p = np.asarray(prompts, dtype=np.float32)
        r = np.asarray(responses, dtype=np.float32)
        if p.shape != r.shape or p.ndim != 2 or len(p) != len(response_chars):
            raise ValueError("prompts and responses must be 2-D arrays of the same shape, one row per record")
        out: list[float | None] = []
        for i, chars in enumerate(response_chars):
            if chars < self.min_chars:
                out.append(None)
                continue
            out.append(self._score(p[i], r[i]) if score else None)
            if remember:
                self._remember(p[i], r[i])
        return out

    def _score(self, prompt: npt.NDArray[np.float32], response: npt.NDArray[np.float32]) -> float | None:
        if self._prompts is None or self._responses is None or self._filled == 0:
            return None
        n = self._filled
        different = self._prompts[:n] @ prompt < self.prompt_max_similarity
        if not different.any():
            return None
        sims = self._responses[:n][different] @ response
        return float(min(1.0, max(0.0, float(sims.max()))))

    def _remember(self, prompt: npt.NDArray[np.float32], response: npt.NDArray[np.float32]) -> None:
        if self._prompts is None or self._responses is None:
            self._prompts = np.zeros((self.window, prompt.shape[0]), dtype=np.float32)
            self._responses = np.zeros((self.window, response.shape[0]), dtype=np.float32)
        self._prompts[self._next] = prompt
        self._responses[self._next] = response
        self._next = (self._next + 1) % self.window
        self._filled = min(self._filled + 1, self.window)
