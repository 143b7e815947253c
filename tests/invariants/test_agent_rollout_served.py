"""Multi-turn rollouts (and turn-level beam search) through `prmkit serve-policy` equal the local sampler's
for the same seeds.

K episodes from the same prompts, on a tiny random agent policy saved to disk and served on loopback:
with token-id prompts (`OpenAISampler(token_prompts=True)`) every episode's actions, observations,
token ids and logprobs equal the local rollout's. The text path re-tokenises the context, which loses a
special token the policy sampled inside an action (it decodes to no text): its episodes equal the local
ones exactly when no such token was sampled before the last turn, and differ on some that have one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
import torch

from prmkit.agents.hopgym import make_env, make_split
from prmkit.agents.hopgym.train_policy import AGENT_CHARS
from prmkit.agents.rollout import RolloutParams, rollout
from prmkit.policy.hf import HFSampler
from prmkit.policy.openai import OpenAISampler

PARAMS = RolloutParams(k=8, max_turns=4, max_action_tokens=10, seed=3)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from transformers import LlamaForCausalLM

    from prmkit.gym.tokenizer import build_char_tokenizer
    from prmkit.gym.train_policy import model_config

    tok = build_char_tokenizer(AGENT_CHARS)
    torch.manual_seed(0)
    model = LlamaForCausalLM(model_config(tok, 32, 2, 2, 1024))
    with torch.no_grad():  # a small push toward newline: actions of a few characters, some specials among them
        model.lm_head.weight[tok.convert_tokens_to_ids("\n")] += 0.1
    d = tmp_path_factory.mktemp("served-agent")
    model.save_pretrained(d)
    tok.save_pretrained(d)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "prmkit.cli", "serve-policy", "--model", str(d), "--port",
                             str(port)], env={**os.environ, "PRMKIT_QUIET": "1"})
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.25)
    else:
        proc.kill()
        raise RuntimeError("serve-policy did not start")
    try:
        yield HFSampler.from_pretrained(str(d), device="cpu"), url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _generated_logprobs(toks) -> list[float]:
    return [lp for lp, m in zip(toks.logprobs, toks.action_mask) if m]


def _turns(ep) -> list[tuple[str, str]]:
    return [(t.action, t.observation) for t in ep.turns]


def _special_before_last_turn(toks, special: set[int]) -> bool:
    """A special token (other than an ending EOS) sampled in an action that is followed by another turn."""
    if len(toks.turn_ends) < 2:
        return False
    last_start = toks.context_ends[-2]  # where the last action's tokens begin
    return any(m and t in special for t, m in zip(toks.ids[:last_start], toks.action_mask[:last_start]))


def test_token_prompts_over_the_wire_equal_the_local_rollout(served):
    local, url = served
    problems = make_split("dev", 2)
    here = rollout(local, problems, make_env, PARAMS)
    there = rollout(OpenAISampler(base_url=f"{url}/v1", token_prompts=True), problems, make_env, PARAMS)
    assert len(here) == len(there) == 16
    assert len({tuple(_turns(ep)) for ep, _ in here[:8]}) > 1  # the K episodes of one prompt differ
    for (ea, ta), (eb, tb) in zip(here, there):
        assert (ea.problem_id, ea.meta["k"]) == (eb.problem_id, eb.meta["k"])
        assert _turns(ea) == _turns(eb) and ea.finished == eb.finished
        assert ta.ids == tb.ids and ta.action_mask == tb.action_mask and ta.turn_ends == tb.turn_ends
        assert ta.prompt_len == tb.prompt_len and ta.context_ends == tb.context_ends
        assert max(abs(a - b) for a, b in zip(ta.logprobs, tb.logprobs)) < 1e-4


def test_text_path_equals_local_unless_a_special_token_was_sampled_mid_episode(served):
    local, url = served
    problems = make_split("dev", 2)
    special = set(local.tokenizer.all_special_ids)
    here = rollout(local, problems, make_env, PARAMS)
    there = rollout(OpenAISampler(base_url=f"{url}/v1"), problems, make_env, PARAMS)
    clean = differing = 0
    for (ea, ta), (eb, tb) in zip(here, there):
        la, lb = _generated_logprobs(ta), _generated_logprobs(tb)
        same = _turns(ea) == _turns(eb) and len(la) == len(lb) and max(abs(a - b) for a, b in zip(la, lb)) < 1e-4
        if not _special_before_last_turn(ta, special):
            assert same, (ea.problem_id, ea.meta["k"])
            # the text context the server re-tokenised is the token record the local sampler kept
            assert local.encode_prompt(ea.text())[: len(ta.ids)] == ta.ids or local.tokenizer.eos_token_id in ta.ids
            clean += 1
        else:
            differing += not same
    assert clean >= 4 and differing >= 1


def test_beam_search_over_the_wire_equals_local(served, tmp_path):
    """`prmkit agent search --base-url` (beam, sampled candidates, the gold checker) picks the same episodes
    with the same scores as the same search on the local sampler."""
    import json

    from prmkit.agents.search_run import AgentSearchConfig, run

    local, url = served
    base = dict(method="beam", n=2, m=3, num_problems=2, split="dev", max_turns=3, max_action_tokens=8, seed=4)
    rows = {}
    for name, extra in (("local", dict(model=local.model.name_or_path)), ("served", dict(base_url=f"{url}/v1"))):
        run(AgentSearchConfig(out=str(tmp_path / name), **base, **extra))
        rows[name] = [json.loads(x) for x in (tmp_path / name / "episodes.jsonl").read_text().splitlines()]
    for a, b in zip(rows["local"], rows["served"]):
        assert [[(t["action"], t["observation"]) for t in e["turns"]] for e in a["candidates"]] == \
               [[(t["action"], t["observation"]) for t in e["turns"]] for e in b["candidates"]]
        assert a["scores"] == b["scores"] and a["chosen"] == b["chosen"]
