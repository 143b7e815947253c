"""hopgym: multi-hop questions over a seeded knowledge graph, with tools and exact turn-level gold."""

from prmkit.agents.hopgym.labels import TurnGold, consistent_answers, episode_gold, label_turns
from prmkit.agents.hopgym.task import (TASK, grade, make_env, make_problem, make_split, noisy_actions,
                                       oracle_actions, world_of)
from prmkit.agents.hopgym.world import HopConfig, Question, World, make_question, make_world

__all__ = ["TASK", "HopConfig", "Question", "TurnGold", "World", "consistent_answers", "episode_gold", "grade",
           "label_turns", "make_env", "make_problem", "make_question", "make_split", "make_world",
           "noisy_actions", "oracle_actions", "world_of"]
