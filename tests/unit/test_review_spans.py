"""Flagged spans on the labeling page: response terms the context does not support."""

from __future__ import annotations

from agent.review.spans import unsupported_terms


class TestUnsupportedTerms:
    """Numbers and names absent from the context are marked; the segments rebuild the response exactly."""

    def test_marks_novel_numbers_and_names(self) -> None:
        """A year and a name the context lacks are marked; supported ones and sentence starts are not."""
        response = "The tower is 330 m tall and was built by Gustave Eiffel in 1889. Paris loves it."
        segments = unsupported_terms(response, ["The Eiffel Tower in Paris is 330 metres tall."])
        assert [text for text, marked in segments if marked] == ["Gustave", "1889"]
        assert "".join(text for text, _ in segments) == response

    def test_markup_is_kept_as_text(self) -> None:
        """Markup in the response stays in the text segments, unchanged (the template escapes it)."""
        response = "<script>alert(1)</script> In 2024 <img src=x onerror=alert(2)>"
        segments = unsupported_terms(response, ["nothing"])
        assert "".join(text for text, _ in segments) == response
        assert ("2024", True) in segments

    def test_empty_response(self) -> None:
        """An empty response is one empty segment."""
        assert unsupported_terms("", []) == [("", False)]
