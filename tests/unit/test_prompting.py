"""The prompt format: rendering against hand-written texts, files, option precedence, and the samplers
(local, and the OpenAI client over serve-policy's two endpoints) reading the rendered text."""

from __future__ import annotations

import json

import pytest
import torch

from prmkit.errors import InputError
from prmkit.policy.base import SamplingParams
from prmkit.policy.hf import HFSampler
from prmkit.prompting import FORMAT_FILE, PromptFormat, PromptOptions, policy_input, saved_format
from tests.conftest import build_qwen_chat_tokenizer, build_tiny_qwen2

CHAT = PromptFormat(template="Solve: {problem}", chat_template=True, system_prompt="Be brief.",
                    stop=("<|im_end|>",), solution_prefix="Step 1:")
# the ChatML text of CHAT for problem "2+3", written out by hand
CHAT_TEXT = ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nSolve: 2+3<|im_end|>\n"
             "<|im_start|>assistant\nStep 1:")


@pytest.fixture(scope="module")
def qwen_tok():
    return build_qwen_chat_tokenizer()


@pytest.fixture(scope="module")
def qwen_sampler(qwen_tok):
    return HFSampler(build_tiny_qwen2(qwen_tok), qwen_tok, sep="\n")


def test_default_format_is_the_identity():
    fmt = PromptFormat()
    for p in ["Q:7,+3,*2\n", "Janet has {3} eggs", ""]:
        assert fmt.render(p) == p
    assert fmt.is_raw and fmt.render_steps("Q:7,+3\n", ["7+3=10", "A:10"], "\n") == "Q:7,+3\n7+3=10\nA:10"


def test_template_and_prefix_render_by_hand():
    fmt = PromptFormat(template="Question: {problem}\nAnswer:", solution_prefix=" Step 1:")
    # braces elsewhere in the template or problem are kept as written (no str.format)
    assert fmt.render("x = {1}") == "Question: x = {1}\nAnswer: Step 1:"
    assert fmt.render_steps("a", ["b", "c"], "\n\n") == "Question: a\nAnswer: Step 1:b\n\nc"
    with pytest.raises(InputError, match="exactly once"):
        PromptFormat(template="no slot")
    with pytest.raises(InputError, match="chat template"):
        PromptFormat(system_prompt="hi")


def test_chat_template_render_by_hand(qwen_tok, bpe_tokenizer):
    assert CHAT.render("2+3", qwen_tok) == CHAT_TEXT
    no_system = PromptFormat(chat_template=True)
    assert no_system.render("2+3", qwen_tok) == "<|im_start|>user\n2+3<|im_end|>\n<|im_start|>assistant\n"
    with pytest.raises(InputError, match="no chat template"):
        no_system.render("2+3", bpe_tokenizer)


def test_file_round_trip_and_bad_files(tmp_path):
    CHAT.save(tmp_path)
    assert json.loads((tmp_path / FORMAT_FILE).read_text())["stop"] == ["<|im_end|>"]
    assert PromptFormat.load(tmp_path) == CHAT and saved_format(tmp_path) == CHAT
    assert saved_format(tmp_path / "nowhere") is None and saved_format("") is None
    bad = tmp_path / "bad.json"
    bad.write_text('{"template": "{problem}", "stops": []}')
    with pytest.raises(InputError, match=r"bad.json.*unknown prompt-format field\(s\) \['stops'\]"):
        PromptFormat.load(bad)
    bad.write_text('{"chat_template": "yes"}')
    with pytest.raises(InputError, match="field 'chat_template': expected bool"):
        PromptFormat.load(bad)


def test_options_precedence(tmp_path, capsys):
    CHAT.save(tmp_path)
    assert PromptOptions().resolve_format(tmp_path) == CHAT           # nothing given: the model's own
    assert "saved with the model" in capsys.readouterr().out
    given = PromptOptions(prompt_template="Q: {problem}", stop=["\n\n"])
    assert given.resolve_format(tmp_path) == PromptFormat(template="Q: {problem}", stop=("\n\n",))
    assert "replace" in capsys.readouterr().out
    assert PromptOptions().resolve_format(tmp_path / "none") == PromptFormat()
    assert PromptOptions(prompt_format=str(tmp_path)).resolve_format() == CHAT
    with pytest.raises(InputError, match="not both"):
        PromptOptions(prompt_format=str(tmp_path), chat_template=True).resolve_format()


def test_sampler_reads_the_rendered_text(qwen_sampler, qwen_tok, tmp_path, monkeypatch):
    qwen_sampler.prompt_format = CHAT
    log = tmp_path / "inputs.jsonl"
    monkeypatch.setenv("PRMKIT_INPUT_LOG", str(log))
    text = policy_input(qwen_sampler, "2+3")
    assert text == CHAT_TEXT
    qwen_sampler.sample([text], SamplingParams(n=2, max_new_tokens=4, seed=1))
    assert [json.loads(line) for line in log.read_text().splitlines()] == [{"role": "policy", "text": CHAT_TEXT}]
    # the prompt's token ids are the tokenizer's ids of the hand-written text
    assert qwen_sampler.encode_prompt(text) == qwen_tok(CHAT_TEXT)["input_ids"]
    qwen_sampler.prompt_format = PromptFormat()


def test_special_token_stop_string_ends_a_sample(qwen_tok):
    model = build_tiny_qwen2(qwen_tok)
    end = qwen_tok.convert_tokens_to_ids("<|im_end|>")
    head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():  # a head that always predicts <|im_end|>
        head.weight.zero_()
        head.bias.zero_()
        head.bias[end] = 10.0
    model.lm_head = head
    s = HFSampler(model, qwen_tok)
    s.prompt_format = CHAT
    [[c]] = s.sample([s.render("2+3")], SamplingParams(n=1, max_new_tokens=5, temperature=0))
    assert (c.token_ids, c.text, c.finish_reason, c.stop) == ([end], "", "stop", "<|im_end|>")
    s.prompt_format = PromptFormat()  # without the stop string the same head runs to the length limit
    [[c]] = s.sample([s.render("2+3")], SamplingParams(n=1, max_new_tokens=5, temperature=0))
    assert (c.token_ids, c.finish_reason) == ([end] * 5, "length")


def _client_over(sampler, fmt, endpoint):
    from fastapi.testclient import TestClient

    from prmkit.policy.openai import OpenAISampler
    from prmkit.serve.policy_server import make_app

    client = OpenAISampler(base_url="http://testserver/v1", model="tiny", endpoint=endpoint, prompt_format=fmt)
    client.client = TestClient(make_app(sampler, "tiny"))
    return client


@pytest.mark.parametrize("partial", ["", " 2+3=5\n"])
def test_chat_endpoint_equals_local_sampler(qwen_sampler, partial):
    """The OpenAI client on /v1/chat/completions (messages; a partial solution continued) samples the same
    tokens as the local sampler on the rendered text with the same seeds."""
    params = SamplingParams(n=3, max_new_tokens=6, seed=5)
    qwen_sampler.prompt_format = CHAT
    local = qwen_sampler.sample([qwen_sampler.render("2+3") + partial], params, seeds=[11])[0]
    qwen_sampler.prompt_format = PromptFormat()  # the server renders the messages; the client sends the stops
    client = _client_over(qwen_sampler, CHAT, "chat")
    prompt = client.render("2+3") + partial
    messages, cont = client.chat_messages(prompt)
    assert cont and messages == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Solve: 2+3"},
                                 {"role": "assistant", "content": "Step 1:" + partial}]
    bare = _client_over(qwen_sampler, PromptFormat(chat_template=True), "chat")
    assert bare.chat_messages(bare.render("2+3")) == ([{"role": "user", "content": "2+3"}], False)
    remote = client.sample([prompt], params, seeds=[11])[0]
    assert [c.token_ids for c in remote] == [c.token_ids for c in local]
    assert [c.text for c in remote] == [c.text for c in local]
    for r, c in zip(remote, local):
        assert r.logprobs == pytest.approx(c.logprobs, abs=1e-5)


def test_completions_endpoint_renders_chat_text_with_the_models_tokenizer(qwen_sampler, qwen_tok, tmp_path):
    qwen_tok.save_pretrained(tmp_path)
    client = _client_over(qwen_sampler, CHAT, "completions")
    client.model = str(tmp_path)  # the tokenizer the client renders with
    assert client.render("2+3") == CHAT_TEXT
    params = SamplingParams(n=2, max_new_tokens=5, seed=3)
    local = qwen_sampler.sample([CHAT_TEXT], SamplingParams(n=2, max_new_tokens=5, seed=3, stop=["<|im_end|>"]),
                                seeds=[7])[0]
    remote = client.sample([client.render("2+3")], params, seeds=[7])[0]
    assert [c.token_ids for c in remote] == [c.token_ids for c in local]


def test_chat_endpoint_refuses_bad_messages(qwen_sampler):
    from fastapi.testclient import TestClient

    from prmkit.serve.policy_server import make_app

    app = TestClient(make_app(qwen_sampler, "tiny"))
    r = app.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                               "continue_final_message": True})
    assert r.status_code == 422 and "assistant" in r.json()["detail"]
    r = app.post("/v1/chat/completions", json={"messages": [{"role": "user"}]})
    assert r.status_code == 422 and "field 'messages'" in r.json()["detail"]


def _bos_tokenizer():
    """A BPE tokenizer that adds <s> in front of every sequence, with a chat template that writes <s> too
    (as Llama 3's does)."""
    from tokenizers import processors

    from tests.conftest import build_bpe_tokenizer

    tok = build_bpe_tokenizer(special=["<s>", "<|eot|>"])
    tok.bos_token = "<s>"
    bos = tok.convert_tokens_to_ids("<s>")
    tok._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", bos)])
    tok.chat_template = "{{ bos_token }}{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}<|eot|>{% endfor %}" \
                        "{% if add_generation_prompt %}assistant: {% endif %}"
    return tok, bos


def test_a_bos_written_by_the_chat_template_is_not_doubled():
    from prmkit.steps import encode_steps

    tok, bos = _bos_tokenizer()
    assert tok("hi")["input_ids"][0] == bos  # the tokenizer adds it
    fmt = PromptFormat(chat_template=True)
    text = fmt.render("2+3", tok)
    assert text == "<s>user: 2+3<|eot|>assistant: "
    s = HFSampler(build_tiny_qwen2(tok), tok)
    ids = s.encode_prompt(text)
    assert ids.count(bos) == 1 and ids[0] == bos
    enc = encode_steps(tok, text, ["a", "b"], sep="\n")
    assert enc.input_ids.count(bos) == 1 and enc.input_ids[0] == bos
    raw = encode_steps(tok, "2+3", ["a"], sep="\n")  # without a template the BOS is still added
    assert raw.input_ids[0] == bos


def test_reward_models_render_with_their_saved_format(qwen_tok, tmp_path):
    """A PRM and an implicit PRM read (problem, steps) as chat text + steps, keep the format in their dir and
    read it back; the ids equal encode_steps of the hand-written chat text."""
    from transformers import Qwen2ForTokenClassification

    from prmkit.rewards import load_reward_model
    from prmkit.rewards.discriminative import DiscriminativePRM
    from prmkit.rewards.implicit import ImplicitPRM
    from prmkit.steps import encode_steps

    from transformers import AutoTokenizer

    steps = ["2+3=5", "The answer is 5."]
    torch.manual_seed(0)
    head = Qwen2ForTokenClassification(build_tiny_qwen2(qwen_tok).config)
    # the tokenizer as a model dir gives it back (beside a Qwen2 config it loads as Qwen2's own class)
    head.save_pretrained(tmp_path / "base")
    qwen_tok.save_pretrained(tmp_path / "base")
    tok = AutoTokenizer.from_pretrained(tmp_path / "base")
    prm = DiscriminativePRM(head, tok, readout="trl")
    prm.prompt_format = CHAT
    want = encode_steps(tok, CHAT_TEXT, steps, sep="", step_tag="\n")   # the trl readout's layout
    assert prm.encode("2+3", steps).input_ids == want.input_ids
    prm.save_pretrained(tmp_path / "prm")
    back = load_reward_model(tmp_path / "prm")
    assert back.prompt_format == CHAT and back.encode("2+3", steps).input_ids == want.input_ids
    assert back.score(["2+3"], [steps])[0] == pytest.approx(prm.score(["2+3"], [steps])[0], abs=1e-6)

    lm = build_tiny_qwen2(qwen_tok)
    imp = ImplicitPRM(lm, build_tiny_qwen2(qwen_tok, seed=1), qwen_tok, sep="\n")
    imp.prompt_format = CHAT
    assert imp.encode("2+3", steps).input_ids == encode_steps(qwen_tok, CHAT_TEXT, steps, sep="\n").input_ids
    imp.save_pretrained(tmp_path / "imp")
    assert PromptFormat.load(tmp_path / "imp") == CHAT


def test_search_ends_a_solution_at_a_stop_string_that_is_not_the_separator():
    from prmkit.policy.base import Completion
    from prmkit.search.base import Policy, SearchParams

    class Fixed:  # a sampler stand-in: the search's classification of what it returns is under test
        sep = "\n"

    policy = Policy(Fixed(), None, SearchParams(), 1)
    step = Completion(text="2+3=5", token_ids=[1, 2], logprobs=[0.0, 0.0], steps=["2+3=5"], finish_reason="stop",
                      stop="\n")
    end = Completion(text="The answer is 5.", token_ids=[1, 2], logprobs=[0.0, 0.0], steps=["The answer is 5."],
                     finish_reason="stop", stop="<|im_end|>")
    assert (policy._classify(step, False, None).ended, policy._classify(step, False, None).sep_hit) == (False, True)
    assert (policy._classify(end, False, None).ended, policy._classify(end, False, None).steps) == (
        True, ["The answer is 5."])


def test_prompt_options_on_the_command_line():
    """--stop repeats; the options build the format a command uses."""
    import typer
    from typer.testing import CliRunner

    from prmkit.config import command_from_config

    seen = []
    app = typer.Typer()
    app.command()(command_from_config(PromptOptions, seen.append))
    result = CliRunner().invoke(app, ["--chat-template", "--system-prompt", "Be brief.", "--prompt-template",
                                      "Solve: {problem}", "--stop", "<|im_end|>", "--stop", "\n\n",
                                      "--solution-prefix", "Step 1:"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert seen[-1].given_format() == PromptFormat(template="Solve: {problem}", chat_template=True,
                                                   system_prompt="Be brief.", stop=("<|im_end|>", "\n\n"),
                                                   solution_prefix="Step 1:")
    CliRunner().invoke(app, [], catch_exceptions=False)
    assert seen[-1].given_format() is None and seen[-1].resolve_format() == PromptFormat()
