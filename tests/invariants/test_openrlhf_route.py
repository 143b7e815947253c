"""`prmkit serve` as OpenRLHF's remote reward model: POST /get_reward with OpenRLHF 0.11's exact body
(`query` = prompt + response decoded with special tokens, `prompts`, `labels`, as
openrlhf/utils/agent.py `_fetch_rewards_via_http` builds it). Raw text split server-side scores
exactly as the same steps sent pre-split to /score."""

import pytest
import torch

from prmkit.gym.task import make_split, parse_prompt
from prmkit.rewards.aggregate import aggregate
from prmkit.serve.openrlhf import RawTextFormat
from prmkit.serve.reward_server import ScoreLimits, create_app


@pytest.fixture(scope="module")
def prm():
    from prmkit.resolve import parse_rm_spec

    return parse_rm_spec("gym-prm", "model").load(device="cpu")


def _items(n=4):
    prompts, steps = [], []
    for i, p in enumerate(make_split("test", n)):
        ss = parse_prompt(p.prompt).solution_steps()
        if i % 2:
            lhs, res = ss[0].split("=")
            ss[0] = f"{lhs}={int(res) + 1}"
        prompts.append(p.prompt)
        steps.append(ss)
    return prompts, steps


def _openrlhf_tensors(answer: dict):
    """What OpenRLHF 0.11 does with the answer (samples_generator.py): reward and score per query, and
    `torch.tensor([value])` of every extra_logs value."""
    out = {"reward": torch.tensor([answer.get("rewards")]), "score": torch.tensor([answer.get("scores")])}
    for k, v in answer.get("extra_logs", {}).items():
        out[k] = torch.tensor([v])
    return out


def test_openrlhf_body_scores_like_pre_split_steps(prm):
    from fastapi.testclient import TestClient

    prompts, steps = _items(4)
    with TestClient(create_app(prm)) as c:
        direct = c.post("/score", json={"prompts": prompts, "steps": steps}).json()["results"]
        for i, (p, ss) in enumerate(zip(prompts, steps)):
            one = c.post("/score", json={"prompts": [p], "steps": [ss]}).json()["results"][0]  # same batch shape
            # one query per request, as OpenRLHF's single-turn executor sends it (EOS text kept)
            body = {"query": [p + "\n".join(ss) + prm.tokenizer.eos_token], "prompts": [p], "labels": ["x"]}
            r = c.post("/get_reward", json=body)
            assert r.status_code == 200, r.text
            ans = r.json()
            assert ans["steps"] == [ss]
            assert ans["step_scores"] == [one["step_scores"]]
            assert ans["rewards"] == [aggregate(one["step_scores"], prm.aggregation)] == ans["scores"]
            assert ans["extra_logs"]["num_steps"] == [len(ss)]
            t = _openrlhf_tensors(ans)
            assert t["reward"].shape == (1, 1) and t["num_steps"].item() == len(ss)
        # several queries in one body: one reward each, in order
        body = {"query": [p + "\n".join(ss) for p, ss in zip(prompts, steps)], "prompts": prompts,
                "labels": [None] * len(prompts)}
        ans = c.post("/get_reward", json=body).json()
        assert ans["step_scores"] == [d["step_scores"] for d in direct]


def test_split_mode_and_empty_response(prm):
    from fastapi.testclient import TestClient

    prompts, steps = _items(1)
    fmt = RawTextFormat(split="double_newline", strip=(prm.tokenizer.eos_token,))
    with TestClient(create_app(prm, raw_format=fmt)) as c:
        want = c.post("/score", json={"prompts": prompts, "steps": steps}).json()["results"][0]
        ans = c.post("/get_reward", json={"query": [prompts[0] + "\n\n".join(steps[0]), prompts[0]],
                                          "prompts": [prompts[0], prompts[0]]}).json()
        assert ans["step_scores"][0] == want["step_scores"]
        assert ans["steps"][1] == [] and ans["rewards"][1] == 0.0 and ans["extra_logs"]["empty_response"] == [0.0, 1.0]


def test_refusals_name_the_field(prm):
    from fastapi.testclient import TestClient

    prompts, steps = _items(2)
    with TestClient(create_app(prm, token="sekret", limits=ScoreLimits(max_items=1))) as c:
        body = {"query": [p + "\n".join(s) for p, s in zip(prompts, steps)], "prompts": prompts}
        assert c.post("/get_reward", json=body).status_code == 401  # the guard covers this route too
        auth = {"Authorization": "Bearer sekret"}
        r = c.post("/get_reward", json=body, headers=auth)
        assert r.status_code == 413 and "'query'" in r.json()["detail"]
        r = c.post("/get_reward", json={"query": ["nope" + "\n".join(steps[0])], "prompts": [prompts[0]]},
                   headers=auth)
        assert r.status_code == 422 and "query[0]" in r.json()["detail"]
        r = c.post("/get_reward", json={"query": ["a"], "prompts": ["a", "b"]}, headers=auth)
        assert r.status_code == 422 and "'prompts'" in r.json()["detail"]
