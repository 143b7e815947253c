"""Generative verifier: verdict parsers on hand-written outputs, P(Yes)/(P(Yes)+P(No)) against a
hand-computed value from a tiny model whose probabilities are set here, averaging over chains,
unparsed counting, and the plumbing on the gym model."""

from __future__ import annotations

import math
import string

import pytest
import torch

from prmkit.policy.base import Completion, SamplerStats
from prmkit.rewards.generative import GenerativeVerifier, word_logprobs
from prmkit.rewards.verdicts import (Verdict, parse_final_verdict, parse_step_verdicts, parse_yes_no, top_logprob_probability,
                                     verdict_probability)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread: on the shared 2-core machine, 2 threads of tiny matmuls run ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

# ---------------------------------------------------------------------------------------------
# parsers

THINK = """Let's check.
Step 1: 7+3 is 10, so this is right. \\boxed{correct}
**Step 2:** 10*2 should be 20 but it says 21. \\boxed{\\text{Incorrect}}
Step 3: follows from a wrong value. \\boxed{ incorrect }
Step 3: Wait, re-checking... \\boxed{correct}
Step 7: \\boxed{correct}
Is the solution correct? **No**"""


def test_parse_step_verdicts_with_headers():
    v = parse_step_verdicts(THINK, 4)
    assert [x.positive if x else None for x in v] == [True, False, True, None]  # step 3: the last verdict counts
    assert THINK[v[1].start:v[1].start + len(v[1].word)] == "Incorrect"
    assert parse_final_verdict(THINK) == Verdict(False, THINK.index("No**"), "No")


def test_parse_step_verdicts_without_headers_and_truncated():
    text = "first ok \\boxed{correct} then \\boxed{incorrect} and \\boxed{corr"
    assert [x.positive if x else None for x in parse_step_verdicts(text, 3)] == [True, False, None]
    assert parse_step_verdicts("no verdicts here, correct and incorrect", 2) == [None, None]
    assert parse_step_verdicts("\\boxed{correctness}", 1) == [None]  # not the word
    assert parse_final_verdict("Step 1: \\boxed{correct}") is None


@pytest.mark.parametrize("text, want", [
    ("analysis...\n**Judgement**: $\\boxed{Yes}$", True),
    ("\\boxed{No} at first, but on reflection \\boxed{\\text{yes}}", True),  # the last judgement
    ("Judgement: **No**", False),
    ("Verdict - yes", True),
    ("The step computes 3+4=7. Nothing else.", None),
    ("Judgement: maybe", None),
])
def test_parse_yes_no(text, want):
    v = parse_yes_no(text)
    assert (v.positive if v else None) == want
    if v:
        assert text[v.start:v.start + len(v.word)].lower() in ("yes", "no")


def test_verdict_probability_by_hand():
    assert verdict_probability(math.log(0.6), math.log(0.2)) == pytest.approx(0.75)
    assert verdict_probability(math.log(0.01), math.log(0.99)) == pytest.approx(0.01)
    assert verdict_probability(0.0, -math.inf) == 1.0
    top = {"Yes": math.log(0.5), "No": math.log(0.3), "Maybe": math.log(0.1)}
    assert top_logprob_probability(top, ["Yes", " Yes"], ["No", " No"]) == pytest.approx(0.5 / 0.8)
    del top["No"]  # the missing side gets the smallest returned logprob (0.1)
    assert top_logprob_probability(top, ["Yes"], ["No"]) == pytest.approx(0.5 / 0.6)
    assert top_logprob_probability({"Maybe": -1.0}, ["Yes"], ["No"]) is None


# ---------------------------------------------------------------------------------------------
# a bigram "LM" whose next-token probabilities are written by hand


class BigramLM(torch.nn.Module):
    """logits[b, t] = log p(. | x_t): a table of next-token distributions chosen in the test."""

    def __init__(self, log_table: torch.Tensor):
        super().__init__()
        self.table = torch.nn.Parameter(log_table, requires_grad=False)  # (V, V)

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kw):
        class Out:
            pass

        out = Out()
        out.logits = self.table[input_ids]  # (B, T, V)
        return out


@pytest.fixture(scope="module")
def bigram():
    """P(Y|{)=.5 P(N|{)=.25; P(Y|*)=.1 P(N|*)=.6; P(e|Y)=.8; P(s|e)=.5; P(o|N)=.9.

    So after '{': P(Yes) = .5*.8*.5 = .2, P(No) = .25*.9 = .225 -> score 8/17;
    after '*':    P(Yes) = .1*.8*.5 = .04, P(No) = .6*.9 = .54  -> score 2/29."""
    from prmkit.gym.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer(string.printable)
    V = len(tok)
    probs = torch.full((V, V), 1.0)

    def row(ch, **targets):
        i = tok.convert_tokens_to_ids(ch)
        rest = 1.0 - sum(targets.values())
        probs[i] = rest / (V - len(targets))
        for t, p in targets.items():
            probs[i, tok.convert_tokens_to_ids(t)] = p

    probs /= probs.sum(-1, keepdim=True)
    row("{", Y=0.5, N=0.25)
    row("*", Y=0.1, N=0.6)
    row("Y", e=0.8)
    row("e", s=0.5)
    row("N", o=0.9)
    return BigramLM(probs.log()), tok


def test_word_logprobs_by_hand(bigram):
    model, tok = bigram

    def enc(s):
        return list(tok(s, add_special_tokens=False)["input_ids"])

    got = word_logprobs(model, tok.pad_token_id, [enc("ab{"), enc("ab{"), enc("x*")], [enc("Yes"), enc("No"),
                                                                                        enc("Yes")])
    assert got == pytest.approx([math.log(0.2), math.log(0.225), math.log(0.04)], abs=1e-6)


class ScriptedSampler:
    """A Sampler whose chains are written in the test (the verifier's parsing and scoring are real)."""

    def __init__(self, chains_for, model=None, tokenizer=None):
        self.chains_for, self.model, self.tokenizer = chains_for, model, tokenizer
        self.stats, self.sep, self.prompts = SamplerStats(), "\n", []

    def sample(self, prompts, params, seeds=None):
        self.prompts += list(prompts)
        out = []
        for p in prompts:
            texts = self.chains_for(p)
            assert len(texts) == params.n
            out.append([Completion(t, [], [], [t], "stop") for t in texts])
        return out


def _genprm_chains(prompt):
    if "Is step 1 correct?" in prompt:
        return ["fine \\boxed{Yes}", "**Judgement**: **No**", "no verdict here"]
    return ["I cannot tell.", "...", "hmm"]  # step 2: nothing parseable


def test_genprm_scores_are_verdict_probabilities_averaged_over_chains(bigram):
    model, tok = bigram
    sampler = ScriptedSampler(_genprm_chains, model, tok)
    ver = GenerativeVerifier(sampler, style="genprm", num_chains=3, aggregation="min")
    [res] = ver.verify(["Q:7,+3,*2\n"], [["7+3=10", "10*2=21"]])
    # one chain per prefix: step 1's prompt shows step 1 only, step 2's shows both
    assert len(sampler.prompts) == 2
    assert "Step 1: 7+3=10" in sampler.prompts[0] and "10*2=21" not in sampler.prompts[0]
    assert "Step 2: 10*2=21" in sampler.prompts[1]
    # P(Yes)/(P(Yes)+P(No)) at each verdict, whatever the chain wrote, averaged over parsed chains
    assert res.chain_scores[0][0] == pytest.approx(8 / 17) and res.chain_scores[1][0] == pytest.approx(2 / 29)
    assert res.chain_scores[2][0] is None
    assert res.step_scores[0] == pytest.approx((8 / 17 + 2 / 29) / 2)
    assert res.step_scores[1] is None  # reported, not silently 0
    assert res.unparsed_chains == 4 and ver.stats.unparsed_steps == 1 and ver.stats.chains == 6
    # the protocol form fills the gap with default_score and is aggregated by the chosen rule
    scores = ver.score(["Q:7,+3,*2\n"], [["7+3=10", "10*2=21"]])
    assert scores == [[pytest.approx((8 / 17 + 2 / 29) / 2), 0.5]]
    nan_ver = GenerativeVerifier(ScriptedSampler(_genprm_chains, model, tok), style="genprm", num_chains=3,
                                 default_score=float("nan"))
    assert math.isnan(nan_ver.score(["Q:1\n"], [["a", "b"]])[0][1])


def test_frequencies_without_logits_and_thinkprm_style():
    chains = ["Step 1: ok \\boxed{correct}\nStep 2: wrong \\boxed{incorrect}\nIs the solution correct? No",
              "Step 2: \\boxed{correct}",
              "garbage"]
    sampler = ScriptedSampler(lambda p: chains)
    ver = GenerativeVerifier(sampler, style="thinkprm", num_chains=3)
    [res] = ver.verify(["Q:7,+3,*2\n"], [["7+3=10", "10*2=21", "A:21"]])
    assert len(sampler.prompts) == 1 and "Let's verify step by step:" in sampler.prompts[0]
    assert res.step_scores == [1.0, 0.5, None]
    assert res.final == [False, None, None] and res.unparsed_chains == 1
    assert ver.stats.unparsed_steps == 1


def test_plumbing_on_the_gym_model(gym_policy):
    """The gym policy cannot write verdicts: every chain is unparsed, counted, and the shapes hold;
    a solution's chains do not depend on its batch neighbours."""
    from prmkit.gym.task import make_split, parse_prompt

    probs = make_split("test", 2)
    steps = [parse_prompt(p.prompt).solution_steps() for p in probs]
    for style in ("thinkprm", "genprm"):
        ver = GenerativeVerifier(gym_policy, style=style, num_chains=2, max_new_tokens=8)
        res = ver.verify([p.prompt for p in probs], steps)
        assert [len(r.step_scores) for r in res] == [len(s) for s in steps]
        assert all(v is None for r in res for v in r.step_scores)
        n_chains = 2 * (len(probs) if style == "thinkprm" else sum(map(len, steps)))
        assert ver.stats.chains == n_chains and ver.stats.unparsed_chains == n_chains
        assert ver.stats.unparsed_steps == sum(map(len, steps)) and ver.stats.tokens_scored > 0
        assert ver.score([probs[0].prompt], [steps[0]]) == [[0.5] * len(steps[0])]
        alone = ver.verify([probs[1].prompt], [steps[1]])[0]
        assert alone.chains == res[1].chains
    assert ver.num_parameters == 362_496


# ---------------------------------------------------------------------------------------------
# over HTTP: GenPRM's top-logprob rule


def test_top_logprob_verdict_by_hand():
    from prmkit.rewards.verdicts import top_logprob_verdict

    ln = math.log
    text = "ok \\boxed{Yes}"
    v = parse_yes_no(text)
    tokens = ["ok", " \\", "boxed", "{", "Yes", "}"]
    top = [None, None, None, None, {"Yes": ln(0.6), "No": ln(0.2), "Maybe": ln(0.1)}, None]
    assert top_logprob_verdict(text, v, tokens, top, ("Yes", "No")) == pytest.approx(0.75)
    # the token carries a space before the word
    text = "Judgement: Yes"
    v = parse_yes_no(text)
    top = [None, {" Yes": ln(0.3), " No": ln(0.6), " Maybe": ln(0.05)}]
    assert top_logprob_verdict(text, v, ["Judgement:", " Yes"], top, ("Yes", "No")) == pytest.approx(1 / 3)
    # a multi-token word: "inc" (and "in") count for "incorrect", "correct" for "correct"
    text = "Step 1: \\boxed{incorrect}"
    [v] = parse_step_verdicts(text, 1)
    tokens = ["Step 1: \\boxed{", "inc", "orrect", "}"]
    top = [None, {"inc": ln(0.5), "correct": ln(0.25), "in": ln(0.1)}, None, None]
    assert top_logprob_verdict(text, v, tokens, top, ("correct", "incorrect")) == pytest.approx(0.25 / 0.75)
    # one side missing: it gets the smallest listed logprob (0.1)
    top = [None, {"inc": ln(0.5), "x": ln(0.1)}, None, None]
    assert top_logprob_verdict(text, v, tokens, top, ("correct", "incorrect")) == pytest.approx(0.1 / 0.6)
    # tokens that do not spell the text: no score
    assert top_logprob_verdict(text, v, ["Step"], [{"a": 0.0}], ("correct", "incorrect")) is None


def test_openai_path_uses_top_logprobs():
    """The request asks for top logprobs; the answer's alternatives score the verdicts."""
    import json

    import httpx

    from prmkit.policy.openai import OpenAISampler

    bodies = []

    def handler(request):
        body = json.loads(request.content)
        bodies.append(body)
        choices = []
        for i, _ in enumerate(body["prompt"]):
            choices.append({"index": 2 * i, "text": "\\boxed{Yes}", "logprobs": {
                "tokens": ["\\boxed{", "Yes", "}"],
                "top_logprobs": [{"\\boxed{": 0.0}, {"Yes": math.log(0.6), "No": math.log(0.2)}, {"}": 0.0}]}})
            choices.append({"index": 2 * i + 1, "text": "hmm", "logprobs": {"tokens": ["hmm"],
                                                                             "top_logprobs": [{"hmm": 0.0}]}})
        return httpx.Response(200, json={"choices": choices})

    sampler = OpenAISampler(base_url="http://verifier.test/v1", model="m")
    sampler.client = httpx.Client(transport=httpx.MockTransport(handler))
    ver = GenerativeVerifier(sampler, style="genprm", num_chains=2, top_logprobs=5)
    [res] = ver.verify(["Q:7,+3\n"], [["7+3=10", "A:10"]])
    assert bodies[0]["logprobs"] == 5 and len(bodies[0]["prompt"]) == 2 and len(bodies[0]["prompt_seeds"]) == 2
    assert res.step_scores == [pytest.approx(0.75), pytest.approx(0.75)]
    assert res.unparsed_chains == 2 and ver.stats.chains == 4


def test_load_reward_model_builds_a_generative_verifier_from_a_causal_lm_dir():
    from prmkit.resolve import default_policy
    from prmkit.rewards import load_reward_model
    from prmkit.rewards.generative import GenerativeVerifier

    rm = load_reward_model(default_policy(), kind="generative")
    assert isinstance(rm, GenerativeVerifier)
    assert rm.num_parameters == 362_496  # the shipped policy's size, counted independently in the README
