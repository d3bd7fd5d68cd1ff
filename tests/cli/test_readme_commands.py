"""The command lines of the README, parsed by the real command line: every option they use exists,
and every folder they read records or baselines from is one a user has (committed in the repository,
or runs/, where the README's first command writes)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import typer

from rexbench.cli import build_app

ROOT = Path(__file__).resolve().parents[2]
INPUTS = ("paths", "from_", "baseline", "reference")  # the parameters that read existing folders


def readme_commands() -> list[list[str]]:
    """The arguments of every `rexbench SUBCOMMAND ...` line in the README's bash blocks."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [
        line
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
    ]
    commands = [
        shlex.split(line, comments=True)[1:] for line in lines if line.startswith("rexbench ")
    ]
    return [args for args in commands if not args[0].startswith("-")]


def parse(args: list[str]) -> click.Context:
    """The context of the (sub)command `args` names, parsed as the CLI parses it."""
    command: click.Command = typer.main.get_command(build_app())
    names = []
    while args and args[0] in (getattr(command, "commands", None) or {}):  # a group
        names.append(args[0])
        command, args = command.commands[args[0]], args[1:]  # type: ignore[attr-defined]
    return command.make_context(" ".join(["rexbench", *names]), list(args))


def folders_read(ctx: click.Context) -> list[str]:
    out = []
    for name in INPUTS:
        value = ctx.params.get(name)
        values = value if isinstance(value, list | tuple) else [value]
        out += [str(v) for v in values if v is not None and (name != "reference" or "/" in str(v))]
    return out


def exists_for_a_user(folder: str) -> bool:
    path = Path(folder)
    return path.parts[:1] == ("runs",) or (ROOT / path).exists()


def test_the_readme_has_the_commands_this_test_reads() -> None:
    commands = readme_commands()
    assert len(commands) >= 20
    assert ["history", "rexnet_x1.0", "--from", "runs", "--plot", "runs/history.svg"] in commands


def test_every_readme_command_parses_and_reads_folders_a_user_has() -> None:
    read = []
    for args in readme_commands():
        folders = folders_read(parse(args))  # an unknown option or a bad value raises here
        missing = [f for f in folders if not exists_for_a_user(f)]
        assert not missing, (args, missing)
        read += folders
    assert {"runs", "results/example"} <= set(read)


def test_a_folder_nobody_has_is_told_apart() -> None:
    ctx = parse(["history", "rexnet_x1.0", "--from", "records", "--plot", "history.svg"])
    assert folders_read(ctx) == ["records"] and not exists_for_a_user("records")
