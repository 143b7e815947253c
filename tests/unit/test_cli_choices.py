"""A method registered with its decorator shows in the command's --help without editing any help text
(`CLI_CHOICES` on the config class names the registry)."""

import typer
from typer.testing import CliRunner

from prmkit.config import _choices_note, command_from_config
from prmkit.rl.config import RLConfig
from prmkit.rl.methods import ADVANTAGES, advantage_method


def test_help_lists_a_newly_registered_advantage_method():
    assert "toy_signed" not in _choices_note(RLConfig, "reward")

    @advantage_method("toy_signed")
    def toy_signed(outcomes, groups):  # noqa: ARG001 — a recipe only needs to exist for the help to list it
        return 2 * outcomes - 1

    try:
        note = _choices_note(RLConfig, "reward")
        assert note.startswith(" (one of: grpo, rloo, ") and note.endswith(", toy_signed)")
        app = typer.Typer()
        app.command("rl")(command_from_config(RLConfig, lambda cfg: None))
        out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "400"}).output
        assert "toy_signed" in out
    finally:
        del ADVANTAGES["toy_signed"]
    assert _choices_note(RLConfig, "out") == ""  # a field without a registry gets no note
