"""The troubleshooting page's "Errors you may see" holds the messages the code really gives (issue 16)."""
import pytest

from tools import error_catalog


def test_the_page_shows_the_real_messages():
    text = error_catalog.PAGE.read_text()
    assert error_catalog.render_page(text) == text, "run: python tools/error_catalog.py"


def test_every_case_raises_and_names_no_machine_path():
    for case in error_catalog.CASES:
        message = error_catalog.trigger(case)
        assert "/tmp/" not in message and "/work/" not in message and "/root/" not in message, message


def test_a_case_that_no_longer_fails_is_reported():
    quiet = error_catalog.Case("nothing wrong", "x = 1", "none")
    with pytest.raises(AssertionError, match="raised no error"):
        error_catalog.trigger(quiet)
