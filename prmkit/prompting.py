"""One prompt format: how a problem becomes the text a model reads.

A `PromptFormat` is a template with `{problem}` (or the tokenizer's chat template around that text,
with an optional system prompt and `add_generation_prompt=True`), the stop strings that end a
solution, and the text the solution begins with. Every stage that builds a model input renders the
problem through it — sampling, labelling rollouts, training, scoring, search, RL and serving — so
all of them see the same text:

    model input = fmt.render(problem, tokenizer) + join_steps(steps, sep)

The default format is the identity (`render(p) == p`), the gym's raw format, so gym runs and the
results in bench/ are unchanged. A format is saved as `prompt_format.json` in every run directory
and model directory prmkit writes, and read back when that model directory is loaded.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from prmkit.errors import InputError

FORMAT_FILE = "prompt_format.json"
PROBLEM_SLOT = "{problem}"


@dataclass(frozen=True)
class PromptFormat:
    template: str = PROBLEM_SLOT
    """the text around each problem, `{problem}` where the problem goes (with the chat template: the user message)"""
    chat_template: bool = False
    """wrap the templated problem in the tokenizer's chat template (one user turn, generation prompt added)"""
    system_prompt: str = ""
    """system message put before the user turn (chat template only)"""
    stop: tuple[str, ...] = ()
    """strings that end a solution (added to every sampling call's stop strings)"""
    solution_prefix: str = ""
    """text the solution begins with, after the prompt (e.g. "Step 1:"); part of every model input"""

    def __post_init__(self) -> None:
        if self.template.count(PROBLEM_SLOT) != 1:
            raise InputError(f"prompt template {self.template!r} must contain {PROBLEM_SLOT} exactly once",
                             field="prompt_template")
        if self.system_prompt and not self.chat_template:
            raise InputError("a system prompt needs the chat template (pass --chat-template), or put the text "
                             "in --prompt-template", field="system_prompt")
        object.__setattr__(self, "stop", tuple(self.stop))

    @property
    def is_raw(self) -> bool:
        """True for the identity format (the gym's): the problem text is the model input as is."""
        return self == PromptFormat()

    def check(self, tokenizer: Any, where: str = "") -> None:
        """Refuse a chat format for a tokenizer without a chat template (before any model loads)."""
        if self.chat_template and not getattr(tokenizer, "chat_template", None):
            raise InputError("--chat-template was given but the tokenizer has no chat template; pass "
                             "--prompt-template instead", file=where or None, field="chat_template")

    def messages(self, problem: str) -> list[dict[str, str]]:
        """The chat messages of one problem (system prompt if any, then the user turn)."""
        user = self.template.replace(PROBLEM_SLOT, problem)
        return ([{"role": "system", "content": self.system_prompt}] if self.system_prompt else []) + [
            {"role": "user", "content": user}]

    def render(self, problem: str, tokenizer: Any = None) -> str:
        """The model input of a problem up to where its first step starts (the solution prefix included)."""
        if not self.chat_template:
            return self.template.replace(PROBLEM_SLOT, problem) + self.solution_prefix
        if tokenizer is None:
            raise InputError("the chat template needs the model's tokenizer to render a prompt", field="chat_template")
        self.check(tokenizer)
        head = tokenizer.apply_chat_template(self.messages(problem), tokenize=False, add_generation_prompt=True)
        return head + self.solution_prefix

    def render_steps(self, problem: str, steps: Sequence[str], sep: str, tokenizer: Any = None) -> str:
        """The model input of a problem and (partial) solution steps: prompt text + prefix + joined steps."""
        from prmkit.steps import join_steps

        return self.render(problem, tokenizer) + join_steps(list(steps), sep)

    # ------------------------------------------------------------------------------ files

    def to_dict(self) -> dict:
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "") -> "PromptFormat":
        known = {"template", "chat_template", "system_prompt", "stop", "solution_prefix"}
        extra = sorted(set(d) - known)
        if extra:
            raise InputError(f"unknown prompt-format field(s) {extra}; expected {sorted(known)}", file=where or None)
        kinds = {"template": str, "chat_template": bool, "system_prompt": str, "solution_prefix": str}
        for k, tp in kinds.items():
            if k in d and not isinstance(d[k], tp):
                raise InputError(f"expected {tp.__name__}, got {d[k]!r}", file=where or None, field=k)
        stop = d.get("stop", [])
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InputError(f"expected a list of strings, got {stop!r}", file=where or None, field="stop")
        return cls(**{**d, "stop": tuple(stop)})

    def save(self, directory: str | Path) -> Path:
        from prmkit.schema import atomic_write_text

        path = Path(directory) / FORMAT_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "PromptFormat":
        """A format from a `prompt_format.json` file or a directory holding one."""
        p = Path(path)
        p = p / FORMAT_FILE if p.is_dir() else p
        try:
            d = json.loads(p.read_text())
        except FileNotFoundError:
            raise InputError("no such prompt-format file", file=str(p)) from None
        except json.JSONDecodeError as e:
            raise InputError(f"not JSON ({e.msg})", file=str(p), line=e.lineno) from None
        if not isinstance(d, dict):
            raise InputError("expected a JSON object", file=str(p))
        return cls.from_dict(d, where=str(p))


def saved_format(model_dir: str | Path | None) -> PromptFormat | None:
    """The format saved in a model directory, or None (no directory, a hub id, or no file)."""
    if not model_dir or not (Path(model_dir) / FORMAT_FILE).is_file():
        return None
    return PromptFormat.load(model_dir)


@dataclass
class PromptOptions:
    """The command-line options of a prompt format (inherited by every config that builds model inputs)."""

    prompt_template: str = ""
    """model input around each problem with {problem} where its text goes (empty: the problem as is; with --chat-template it is the user message)"""
    chat_template: bool = False
    """apply the tokenizer's chat template (one user turn and the generation prompt); off: raw text"""
    system_prompt: str = ""
    """system message before the user turn (with --chat-template)"""
    stop: list[str] = field(default_factory=list)
    """strings that end a solution (repeat the option for several, e.g. --stop '<|im_end|>')"""
    solution_prefix: str = ""
    """text every solution begins with, right after the prompt (e.g. 'Step 1:')"""
    prompt_format: str = ""
    """a prompt_format.json (or a dir holding one, e.g. a run or model dir) to use instead of the options above"""

    def given_format(self) -> PromptFormat | None:
        """The format these options name, or None when none of them was given."""
        if self.prompt_format:
            if self._inline_given():
                raise InputError("give either --prompt-format or the --prompt-template/--chat-template/"
                                 "--system-prompt/--stop/--solution-prefix options, not both", field="prompt_format")
            return PromptFormat.load(self.prompt_format)
        if not self._inline_given():
            return None
        return PromptFormat(template=self.prompt_template or PROBLEM_SLOT, chat_template=self.chat_template,
                            system_prompt=self.system_prompt, stop=tuple(self.stop),
                            solution_prefix=self.solution_prefix)

    def _inline_given(self) -> bool:
        return bool(self.prompt_template or self.chat_template or self.system_prompt or self.stop
                    or self.solution_prefix)

    def resolve_format(self, model_dir: str | Path | None = None) -> PromptFormat:
        """The options' format; else the one saved with the model (said aloud); else the raw default."""
        given = self.given_format()
        saved = saved_format(model_dir)
        if given is not None:
            if saved is not None and saved != given:
                print(f"prompt format: the options given replace the one saved in {Path(model_dir) / FORMAT_FILE}")
            return given
        if saved is not None:
            if not saved.is_raw:
                print(f"prompt format: {Path(model_dir) / FORMAT_FILE} (saved with the model)")
            return saved
        return PromptFormat()


def note_unused_chat_template(fmt: PromptFormat, tokenizer: Any, what: str = "the model") -> None:
    """Say so when a tokenizer ships a chat template that the format does not apply."""
    if not fmt.chat_template and getattr(tokenizer, "chat_template", None):
        print(f"prompt format: {what}'s tokenizer has a chat template that is NOT applied (raw text); "
              "pass --chat-template to apply it")


def with_stops(params: Any, fmt: PromptFormat) -> Any:
    """`params` (SamplingParams) with the format's stop strings added (the same object when there are none)."""
    if not fmt.stop:
        return params
    from dataclasses import replace

    return replace(params, stop=list(params.stop) + [s for s in fmt.stop if s not in params.stop])


def policy_input(sampler: Any, problem: str) -> str:
    """A sampler's input for a problem: its `render` (prompt format) when it has one, else the text as is."""
    render = getattr(sampler, "render", None)
    return render(problem) if render is not None else problem


INPUT_LOG_ENV = "PRMKIT_INPUT_LOG"
"""set to a file path: every model input (policy prompts, reward-model sequences) is appended to it as
a JSON line {"role", "text"} with the text decoded from the token ids the model runs on, each time they are
encoded (a debug record)"""


def log_model_input(role: str, tokenizer: Any, ids: Sequence[int]) -> None:
    """Append one model input to the `PRMKIT_INPUT_LOG` file when that variable is set (else nothing)."""
    import os

    path = os.environ.get(INPUT_LOG_ENV)
    if not path:
        return
    text = tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"role": role, "text": text}) + "\n")


def render_all(fmt: PromptFormat, problems: Sequence[str], tokenizer: Any = None) -> list[str]:
    """`fmt.render` of each problem (the problems themselves under the raw format, with no work)."""
    return list(problems) if fmt.is_raw else [fmt.render(p, tokenizer) for p in problems]


def log_inputs(role: str, tokenizer: Any, encodings: Sequence[Any]) -> None:
    """`log_model_input` of each encoding's `input_ids` (nothing unless PRMKIT_INPUT_LOG is set)."""
    import os

    if os.environ.get(INPUT_LOG_ENV):
        for e in encodings:
            log_model_input(role, tokenizer, e.input_ids)


def check_model_format(fmt: PromptFormat, model_dir: str, trust_remote_code: bool = False) -> None:
    """Refuse a chat format for a model whose tokenizer has no chat template, loading only the tokenizer
    (so the error comes before any weights load)."""
    if fmt.chat_template:
        from transformers import AutoTokenizer

        fmt.check(AutoTokenizer.from_pretrained(model_dir, trust_remote_code=trust_remote_code), where=model_dir)


def set_model_format(model: Any, opts: PromptOptions, model_dir: str) -> PromptFormat:
    """Give a reward model being trained from `model_dir` its prompt format (the options, else the one saved
    in `model_dir`, else raw text); it is saved with the model."""
    fmt = opts.resolve_format(model_dir)
    fmt.check(model.tokenizer, where=model_dir)
    note_unused_chat_template(fmt, model.tokenizer, "the backbone")
    model.prompt_format = fmt
    return fmt


def record_format(run_dir: str | Path, component: Any) -> None:
    """Save the prompt format a run's model read (a sampler's, or a reward model's) into its run dir."""
    fmt = getattr(component, "prompt_format", None)
    if isinstance(fmt, PromptFormat):
        fmt.save(run_dir)
