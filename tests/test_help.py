"""`hnnkit COMMAND --help` names every option's choices and defaults."""

import pytest

from hnnkit.cli import build_parser
from hnnkit.experiments.tasks import list_tasks
from hnnkit.models import list_models
from hnnkit.systems import list_systems

COMMANDS = (
    "systems",
    "models",
    "train",
    "evaluate",
    "symbolic",
    "symbolic-bench",
    "reproduce",
    "run",
)


@pytest.fixture(autouse=True)
def _wide(monkeypatch):
    monkeypatch.setenv("COLUMNS", "1000")  # no wrapping inside a name such as damped-pendulum


def _help(capsys, *argv):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args([*argv, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


@pytest.mark.parametrize("command", COMMANDS)
def test_every_option_of_every_command_is_explained(capsys, command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices[command]
    text = _help(capsys, command)
    for action in sub._actions:
        if action.dest == "help":
            continue
        assert action.help, f"{command} {action.option_strings or action.dest} has no help"
        shown = action.default is not None and action.default is not False
        if action.option_strings and shown:  # a default worth showing is shown
            assert "default" in action.help or f"(default: {action.default})" in text, action


def test_train_help_names_the_models_systems_and_defaults(capsys):
    text = _help(capsys, "train")
    for name in [*list_models(), *(n for n in list_systems() if n != "custom")]:
        assert name in text
    assert "real-pendulum" in text and "custom" in text
    for default in ("(default: 0.001)", "(default: 0)", "(default: 100)", "(default: cpu)"):
        assert default in text
    for option in ("--n-trajectories", "--noise-std", "--hidden", "--log-every", "--seed"):
        assert option in text


def test_reproduce_help_names_the_tasks_profiles_and_out(capsys):
    text = _help(capsys, "reproduce")
    for name in list_tasks():
        assert name in text
    assert "smoke, quick, paper" in text and "(default: quick)" in text
    assert "(default: results)" in text and "report.html" in text
    assert "--quiet no progress bars" in text
