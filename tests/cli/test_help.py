"""`--help` of every command on a page 60 and 80 columns wide: no line wider than the page, no
option name, metavar or help text cut, every command's summary whole in its group's list."""

from __future__ import annotations

import pytest
import typer

from rexbench.cli import build_app, run


def commands(command=None, path=()) -> list[tuple[tuple[str, ...], object]]:
    """(path, click command) of the root and every command and sub-command under it."""
    command = command if command is not None else typer.main.get_command(build_app())
    found = [(path, command)]
    for name, sub in (getattr(command, "commands", None) or {}).items():
        found += commands(sub, (*path, name))
    return found


COMMANDS = commands()


def help_text(path, width: int, monkeypatch, capsys) -> str:
    monkeypatch.setenv("COLUMNS", str(width))
    assert run([*path, "--help"]) == 0
    return capsys.readouterr().out


def flat(text: str) -> str:
    return " ".join(text.split())


def test_every_command_is_walked() -> None:
    paths = {" ".join(path) for path, _ in COMMANDS}
    assert {"", "profile", "sweep", "gate", "history", "baseline save", "rank study"} <= paths


@pytest.mark.parametrize("width", [60, 80])
@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "rexbench" for p, _ in COMMANDS]
)
def test_help_fits_the_page_and_cuts_nothing(path, command, width, monkeypatch, capsys) -> None:
    text = help_text(path, width, monkeypatch, capsys)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "…" not in text
    words = text.split()
    for param in [p for p in command.params if p.param_type_name == "option"]:
        for name in (*param.opts, *param.secondary_opts):
            assert name in words or f"{name}," in words, (name, path)
    for sub in (getattr(command, "commands", None) or {}).values():
        assert flat(sub.help.split("\n\n")[0]) in flat(text), sub.name


def test_long_help_words_and_brackets_are_kept_whole(monkeypatch, capsys) -> None:
    text = flat(help_text(("profile",), 80, monkeypatch, capsys))
    assert "--channels-last / --no-channels-last" in text
    assert "--compile-mode <mode> torch.compile mode: default," in text
    assert "max-autotune or max-autotune-no- cudagraphs" in text  # click breaks after a hyphen
    assert "(runs/<machine-id>/; git ignores runs/)" in text
    assert "pip install 'rexbench[cluster]'" in flat(help_text(("sweep",), 80, monkeypatch, capsys))
    assert "(default: [tool.rexbench.gate] baseline" in flat(
        help_text(("gate",), 80, monkeypatch, capsys)
    )


def test_history_says_where_it_reads_by_default(monkeypatch, capsys) -> None:
    text = flat(help_text(("history",), 80, monkeypatch, capsys))
    assert "(default runs/, where profile writes; read recursively)" in text
    assert "results/" not in text
