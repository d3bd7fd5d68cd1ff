"""The one-line form of an exception that error messages quote."""

from __future__ import annotations

from rexbench.errors import first_line


def test_first_line_is_the_type_and_the_first_line_of_the_message():
    assert first_line(ValueError("  bad value\n  more detail\n")) == "ValueError: bad value"
    assert first_line(RuntimeError("\n\noperator torchvision::nms does not exist")) == (
        "RuntimeError: operator torchvision::nms does not exist"
    )


def test_first_line_of_an_empty_message_is_the_type():
    assert first_line(KeyError()) == "KeyError"
    assert first_line(OSError(" \n ")) == "OSError"
