"""What ``lookout query`` accepts: one statement, no table function that reaches outside lookout's tables."""

from __future__ import annotations

import pytest

from agent.errors import LookoutError
from agent.storage.query import check_query, code_of

PROBE = (
    "SELECT 0; INSERT INTO lookout.annotators (name, token_sha256, created_at, is_admin, disabled, updated_at) "
    "VALUES ('x', 'abc', now64(3), 1, 0, now64(6)); SELECT 1"
)


class TestCheckQuery:
    """Exactly one statement; external table functions refused wherever they appear."""

    @pytest.mark.parametrize(
        "sql",
        [
            PROBE,
            "SELECT 0; CREATE TABLE lookout.pwn (a Int8) ENGINE = Memory; SELECT 1",
            "SELECT 1; DROP TABLE lookout.records",
            "SELECT 1 /* ; */; SELECT 2",
            "SELECT ';' ; SELECT 2",
        ],
    )
    def test_more_than_one_statement_is_refused(self, sql: str) -> None:
        """A second statement after a ';' outside quotes and comments is refused with one line."""
        with pytest.raises(LookoutError, match=r"^lookout query runs exactly one statement"):
            check_query(sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT * FROM file('/etc/passwd', 'LineAsString')",
            "SELECT 0; SELECT * FROM file('/etc/passwd','LineAsString'); SELECT 1",
            "SELECT * FROM URL ('http://127.0.0.1/x', 'CSV')",
            "SELECT count() FROM remote('127.0.0.1', system.one)",
            "SELECT * FROM lookout.v_records WHERE id IN (SELECT c1 FROM s3('http://x/y', 'CSV'))",
        ],
    )
    def test_external_table_functions_are_refused(self, sql: str) -> None:
        """file(), url(), remote(), s3() and the like are refused, case-insensitively, wherever they appear."""
        with pytest.raises(LookoutError, match=r"lookout query (refuses|runs exactly one)"):
            check_query(sql)

    @pytest.mark.parametrize(
        "sql",
        [
            "SELECT count() FROM lookout.v_records",
            "SELECT count() FROM lookout.v_records;",
            "SELECT 'a;b' AS s, 'file(' AS f -- ; SELECT 2\n",
            "SELECT `odd;name` FROM (SELECT 1 AS `odd;name`) /* url( ; */",
            "SELECT 'it''s; fine', 'back\\'slash; too'",
            "SELECT profile FROM lookout.v_records WHERE url_path = 'x'",
        ],
    )
    def test_one_statement_passes(self, sql: str) -> None:
        """Semicolons and function names inside strings, identifiers or comments do not count."""
        check_query(sql)

    def test_empty_statement_is_refused(self) -> None:
        """Only comments or semicolons: nothing to run."""
        with pytest.raises(LookoutError, match="needs a statement"):
            check_query("-- nothing\n;")

    def test_code_blanks_literals_and_comments(self) -> None:
        """Strings, quoted identifiers and comments become single spaces; code stays."""
        assert code_of("SELECT 'x;y', \"a\" -- c\nFROM t /* d */") == "SELECT  ,    \nFROM t  "
