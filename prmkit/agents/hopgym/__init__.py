"""hopgym: multi-hop questions over a seeded knowledge graph, with tools and exact turn-level gold."""

from dataclasses import asdict

from prmkit.agents.env import EnvTask
from prmkit.agents.hopgym.labels import (TurnGold, consistent_answers, episode_gold, label_turns,
                                         observation_relevance)
from prmkit.agents.hopgym.task import (TASK, grade, make_env, make_problem, make_split, noisy_actions,
                                       oracle_actions, world_of)
from prmkit.agents.hopgym.world import HopConfig, Question, World, make_question, make_world

__all__ = ["TASK", "HopConfig", "Question", "TurnGold", "World", "consistent_answers", "episode_gold", "grade",
           "hopgym_task", "label_turns", "make_env", "make_problem", "make_question", "make_split", "make_world",
           "noisy_actions", "observation_relevance", "oracle_actions", "world_of"]


def hopgym_task() -> EnvTask:
    """hopgym as an `EnvTask` (`prmkit.agents.env.BUILTIN_ENVS` names it)."""
    def outcome(problem, episode) -> float:
        return float(episode.finished and episode.answer == problem.answer)

    def gold(problem, actions):
        world, question = world_of(problem)
        return [asdict(g) for g in label_turns(world, question, actions)]

    def relevance(problem, episode):
        _, question = world_of(problem)
        return observation_relevance(question, [t.observation for t in episode.turns])

    return EnvTask(name=TASK, make_env=make_env, outcome=outcome, gold=gold, relevance=relevance)

