"""The `prmkit` command: one subcommand per stage; each builds its config dataclass and calls run().

Strings map to stage modules here, once (house rule: dispatch at the edge)."""

from __future__ import annotations

import importlib
import sys

import typer

from prmkit.config import command_from_config
from prmkit.errors import InputError

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
    ("", "sample"): "prmkit.policy.sample:SampleConfig",
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
    ("", "rl"): "prmkit.rl.loop:RLConfig",
    ("", "rl-compare"): "prmkit.rl.compare:RLCompareConfig",
    ("agent", "train-policy"): "prmkit.agents.hopgym.train_policy:AgentPolicyConfig",
    ("agent", "stats"): "prmkit.agents.stats:AgentStatsConfig",
    ("agent", "sample"): "prmkit.agents.sample:AgentSampleConfig",
    ("agent", "rl"): "prmkit.agents.rl:AgentRLConfig",
}


def _register() -> None:
    for (group, name), target in COMMANDS.items():
        module_name, cls_name = target.split(":")
        module = importlib.import_module(module_name)
        cmd = command_from_config(getattr(module, cls_name), module.run)
        GROUPS.get(group, app).command(name)(cmd)


def main() -> None:
    _register()
    try:
        app()
    except InputError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
