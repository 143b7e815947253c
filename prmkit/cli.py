"""The `prmkit` command: one subcommand per stage; each builds its config dataclass and calls run().

Strings map to stage modules here, once (house rule: dispatch at the edge)."""

from __future__ import annotations

import importlib
import inspect
import sys
import traceback
from typing import Any, Callable

import typer

from prmkit.config import command_from_config
from prmkit.errors import expected_failure

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="prmkit — process rewards for LLM reasoning.")
gym_app = typer.Typer(no_args_is_help=True, help="The arithmetic gym: problems, tiny policy, statistics.")
app.add_typer(gym_app, name="gym")
train_app = typer.Typer(no_args_is_help=True, help="Train reward models: prm, implicit, orm.")
eval_app = typer.Typer(no_args_is_help=True, help="Evaluate reward models: processbench, bon.")
agent_app = typer.Typer(no_args_is_help=True, help="Multi-turn agents: hopgym, agent policies, turn-level RL.")
app.add_typer(train_app, name="train")
app.add_typer(eval_app, name="eval")
app.add_typer(agent_app, name="agent")
GROUPS = {"": app, "gym": gym_app, "train": train_app, "eval": eval_app, "agent": agent_app}

# command name -> (typer app, "module:ConfigClass"); the module's run(cfg) does the work
COMMANDS = {
    ("gym", "make"): "prmkit.gym.make:GymMakeConfig",
    ("gym", "train-policy"): "prmkit.gym.train_policy:TrainPolicyConfig",
    ("gym", "stats"): "prmkit.gym.stats:GymStatsConfig",
    ("", "sample"): "prmkit.sample:SampleConfig",
    ("", "convert"): "prmkit.convert:ConvertConfig",
    ("", "grade"): "prmkit.grade:GradeConfig",
    ("", "label"): "prmkit.label.run:LabelConfig",
    ("", "label-report"): "prmkit.label.report:LabelReportConfig",
    ("", "serve-policy"): "prmkit.serve.policy_server:ServePolicyConfig",
    ("", "serve"): "prmkit.serve.reward_server:ServeConfig",
    ("", "demo"): "prmkit.demo:DemoConfig",
    ("train", "prm"): "prmkit.train.prm:TrainPRMConfig",
    ("train", "implicit"): "prmkit.train.implicit:TrainImplicitConfig",
    ("train", "orm"): "prmkit.train.orm:TrainORMConfig",
    ("", "score"): "prmkit.score:ScoreConfig",
    ("eval", "processbench"): "prmkit.evaluate.processbench:EvalProcessBenchConfig",
    ("eval", "bon"): "prmkit.evaluate.bon:EvalBonConfig",
    ("", "report"): "prmkit.evaluate.report:ReportConfig",
    ("", "search"): "prmkit.search.run:SearchConfig",
    ("", "eval-search"): "prmkit.search.sweep:EvalSearchConfig",
    ("eval", "search"): "prmkit.search.sweep:EvalSearchConfig",  # the spelling of eval-search
    ("", "rl"): "prmkit.rl.trainer:RLConfig",
    ("", "rl-compare"): "prmkit.rl.compare:RLCompareConfig",
    ("agent", "train-policy"): "prmkit.agents.hopgym.train_policy:AgentPolicyConfig",
    ("agent", "stats"): "prmkit.agents.stats:AgentStatsConfig",
    ("agent", "sample"): "prmkit.agents.sample:AgentSampleConfig",
    ("agent", "rl"): "prmkit.agents.rl:AgentRLConfig",
    ("agent", "search"): "prmkit.agents.search_run:AgentSearchConfig",
}


# commands that read problems or traces files: they take --allow-empty and --on-duplicate
READS_RECORDS = {("", "sample"), ("", "convert"), ("", "grade"), ("", "label"), ("", "label-report"),
                 ("train", "prm"), ("train", "implicit"), ("train", "orm"), ("", "score"),
                 ("eval", "processbench"), ("eval", "bon"), ("", "search"), ("", "eval-search"),
                 ("eval", "search"), ("", "rl"), ("gym", "stats"), ("agent", "sample"), ("agent", "rl"),
                 ("agent", "search")}
_registered: set[tuple[str, str]] = set()


def _register(argv: list[str] | None = None) -> None:
    """Register the commands with typer. Each command's module is imported to read its config, and most of
    them import torch; a command line naming one command (`prmkit score ...`, `prmkit train prm --help`)
    imports that one alone, so its help and its errors come without loading the others. A later call (a
    test running several command lines in one process) adds what it names."""
    only = _named_command(argv) if argv is not None else None          # None: every command
    for key, target in COMMANDS.items():
        if key in _registered or (only is not None and key != only):
            continue
        module_name, cls_name = target.split(":")
        module = importlib.import_module(module_name)
        cmd = command_from_config(getattr(module, cls_name), module.run)
        GROUPS.get(key[0], app).command(key[1])(_cli_command(cmd, key in READS_RECORDS))
        _registered.add(key)


def _named_command(argv: list[str]) -> tuple[str, str] | None:
    """The (group, name) the command line's first words name, or None (help of the whole tool or of a
    group, a mistyped name: everything is registered then, so the listing and the suggestions are whole)."""
    words = [w for w in argv[:2] if not w.startswith("-")][:2]
    if not words:
        return None
    if words[0] in GROUPS and words[0]:
        return (words[0], words[1]) if len(words) > 1 and (words[0], words[1]) in COMMANDS else None
    return ("", words[0]) if ("", words[0]) in COMMANDS else None


def _cli_command(cmd: Callable[..., Any], read_options: bool) -> Callable[..., None]:
    """`cmd` as the command line runs it: its result is not returned (so `main` can tell a finished
    command from an exit code), and with `read_options` it takes --allow-empty and --on-duplicate,
    which set the record readers' policy for the run."""
    from prmkit.reading import DUPLICATE_RULES, ReadPolicy, set_read_policy

    params = list(inspect.signature(cmd).parameters.values())
    read_options = read_options and not {"allow_empty", "on_duplicate"} & {p.name for p in params}
    if read_options:
        params += [
            inspect.Parameter("allow_empty", inspect.Parameter.KEYWORD_ONLY, annotation=bool, default=typer.Option(
                False, "--allow-empty", help="accept an input file with no records (default: an error)")),
            inspect.Parameter("on_duplicate", inspect.Parameter.KEYWORD_ONLY, annotation=str, default=typer.Option(
                "error", "--on-duplicate", help=f"a problem id given twice with different content: "
                f"{' | '.join(DUPLICATE_RULES)} (which copy wins; identical copies are merged)"))]

    def command(**kwargs: Any) -> None:
        if not read_options:
            cmd(**kwargs)
            return
        previous = set_read_policy(ReadPolicy(kwargs.pop("allow_empty"), kwargs.pop("on_duplicate")))
        try:
            cmd(**kwargs)
        finally:
            set_read_policy(previous)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = cmd.__doc__
    return command


def _click_exceptions():
    try:  # typer >= 0.20 carries its own copy of click, and its own Abort
        from typer._click import exceptions
        from typer.exceptions import Abort
    except ImportError:  # pragma: no cover - older typer on the real click
        from click import exceptions
        from click.exceptions import Abort
    return exceptions, Abort


def main(argv: list[str] | None = None) -> None:
    """The error boundary: a command-line mistake or an expected failure exits 2 with one line naming
    what and where; any other exception keeps its traceback, says it is a bug, and exits 1."""
    _register(sys.argv[1:] if argv is None else argv)
    cx, abort = _click_exceptions()
    try:
        code = app(args=argv, prog_name="prmkit", standalone_mode=False)
    except cx.UsageError as e:
        if isinstance(e, cx.NoArgsIsHelpError):
            e.show()
            sys.exit(e.exit_code)
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx is not None else ""
        print(f"error: {_usage_line(e)}{hint}", file=sys.stderr)
        sys.exit(2)
    except cx.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except abort:
        print("Aborted.", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # SystemExit and KeyboardInterrupt pass through
        message = expected_failure(e)
        if message is None:
            traceback.print_exc()
            print(f"error: unexpected {type(e).__name__}: this is a bug in prmkit, not a problem with your input; "
                  "please report it with the traceback above", file=sys.stderr)
            sys.exit(1)
        print(f"error: {message}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)  # an int here is click's exit code (--help: 0)


def _usage_line(e: Exception) -> str:
    return " ".join(e.format_message().split())  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
