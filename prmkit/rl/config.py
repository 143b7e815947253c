"""`prmkit rl`'s settings: `RLConfig`, the option checks made before any model loads, the frozen
reward model spec, and the options a resumed run may change."""

from __future__ import annotations

from dataclasses import dataclass

from prmkit.errors import InputError
from prmkit.prompting import PromptOptions
from prmkit.rl.methods import ADVANTAGES, get_method


@dataclass
class RLConfig(PromptOptions):
    """RL on a causal LM with outcome and/or process rewards (GRPO, RLOO, PRIME, PURE, PAV, PROF, ...)."""

    CLI_CHOICES = {"reward": "prmkit.rl.methods:ADVANTAGES"}  # --help lists the registered names

    out: str = "runs/rl"
    """run directory (metrics.jsonl, tb/, checkpoint/, policy/); rerunning with the same --out resumes"""
    reward: str = "grpo"
    """advantage method, as registered in prmkit/rl/methods.py"""
    model: str = ""
    """policy to start from: local dir or hub id (empty: the shipped gym policy)"""
    prm: str = ""
    """frozen reward model for pure/pav/prof/...: a PRM dir or hub id, http(s)://host:port of `prmkit serve`,
    'gym' (the shipped gym PRM), 'checker[:flip_rate]' (the gym's exact checker, optionally noisy); empty: the
    shipped gym PRM, on gym problems only"""
    prm_token: str = ""
    """bearer token of a remote --prm server (empty: $PRMKIT_RM_TOKEN)"""
    problems: str = ""
    """training problems JSONL (empty: the gym split --split)"""
    split: str = "train"
    """gym split for training prompts when --problems is empty"""
    gym_max_ops: int = 0
    """gym only: most operations in a training prompt (0: the split's own range)"""
    eval_problems_file: str = ""
    """held-out problems JSONL (empty: --eval-split of the gym)"""
    eval_split: str = "test"
    """gym split for held-out evaluation"""
    eval_problems: int = 200
    """held-out problems evaluated every --eval-every steps"""
    eval_every: int = 5
    """steps between held-out evaluations (0: only at the start and the end)"""
    eval_temperature: float = 1.0
    """held-out sampling temperature (0 = greedy); seeds are fixed, so every evaluation reads the same draws"""
    steps: int = 40
    """policy steps"""
    prompts_per_step: int = 16
    """prompts sampled per step"""
    k: int = 8
    """responses per prompt"""
    lr: float = 5e-4
    """policy learning rate (Adam)"""
    lr_1d_mult: float = 1.0
    """learning-rate multiplier for 1-D parameters (norm scales, biases): lets the logit scale (the
    policy's sharpness) move at a useful speed while weight matrices stay at the safe --lr"""
    optimizer: str = "adam"
    """policy optimizer: adam or sgd"""
    warmup_steps: int = 0
    """linear learning-rate warmup over this many optimizer steps (Adam's first steps are sign-like and noisy)"""
    ppo_epochs: int = 1
    """passes over each batch"""
    minibatch: int = 64
    """responses per optimizer step"""
    clip_eps: float = 0.2
    """PPO clip range"""
    kl_coef: float = 0.0
    """weight of the k3 KL(pi || pi_ref) penalty"""
    grad_clip: float = 1.0
    """gradient-norm clip"""
    max_new_tokens: int = 96
    """most tokens per response"""
    temperature: float = 1.0
    """training sampling temperature"""
    sep: str = "\n"
    """step separator of the policy's solutions"""
    outcome_coef: float = 1.0
    """weight of the outcome advantage in dense methods (prime, pav, renorm, clip, delta)"""
    process_coef: float = 1.0
    """weight of the process term (0 turns prime into RLOO on outcomes)"""
    process_anneal: str = "constant"
    """schedule of the process weight over the run: constant, linear, cosine, exp"""
    whiten: bool = False
    """whiten advantages over the batch, any method (prime: see --prime-whiten)"""
    acc_filter: str = "auto"
    """keep only prompts whose accuracy lies in [acc_lower, acc_upper]: on, off, auto (= on for prime); any method"""
    acc_filter_mode: str = "refill"
    """refill: keep sampling prompts until the batch holds --prompts-per-step that pass (PRIME's code); drop:
    train on the rows that pass"""
    refill_oversample: float = 4.0
    """refill: each round samples this many times the prompts still needed (verl's PRIME recipe: 4)"""
    refill_max_rounds: int = 8
    """refill: most sampling rounds per step (then the batch is topped up with failing prompts, which the filter drops)"""
    acc_lower: float = 0.2
    """accuracy filter lower bound (inclusive)"""
    acc_upper: float = 0.8
    """accuracy filter upper bound (inclusive)"""
    prime_beta: float = 0.05
    """PRIME: implicit reward scale beta"""
    prime_lr: float = 1e-6
    """PRIME: learning rate of the online implicit PRM (reference: 1e-6; prmkit's first PRIME: 1e-4)"""
    prime_optimizer: str = "adamw"
    """PRIME: optimizer of the implicit PRM, adamw (reference) or adam"""
    prime_weight_decay: float = 0.0
    """PRIME: weight decay of the implicit PRM's optimizer (reference: 0)"""
    prime_grad_clip: float = 10.0
    """PRIME: gradient-norm clip of the implicit PRM (reference: 10)"""
    prime_passes: int = 1
    """PRIME: CE passes of the implicit PRM over each step's rollouts"""
    prime_loss_scale: str = "minibatch"
    """PRIME: minibatch (mean CE per minibatch, reference) or rows (scaled by the minibatch's share of the rows)"""
    prime_norm: str = "batch_norm"
    """PRIME: process-reward normalisation, batch_norm (divide by the batch's largest |reverse cumsum|) or none"""
    prime_granularity: str = "token"
    """PRIME: token (reward on every token) or whole (the response's summed reward on its last token)"""
    prime_loo: str = "reference"
    """PRIME: leave-one-out on process rewards, reference (with the self-centring term) or paper"""
    prime_whiten: bool = True
    """PRIME: whiten advantages over the batch (the reference always does)"""
    pure_credit: str = "min"
    """PURE credit assignment: min (softmax-T), strict (running min), sum, mean (uniform weights)"""
    pure_temperature: float = 0.1
    """PURE softmax temperature T"""
    vr_coef: float = 1.0
    """PURE: weight of the verifiable (outcome) reward added on the last token"""
    pav_alpha: float = 1.0
    """PAV: weight alpha of the progress term"""
    prof_keep: int = 4
    """PROF: responses kept per prompt"""
    clip_eta: float = 0.5
    """Clip mechanism threshold eta"""
    outcome_flip: float = 0.0
    """noisy-reward experiments: flip each outcome reward with this probability (metrics keep the true outcome)"""
    process_noise_std: float = 0.0
    """noisy-reward experiments: Gaussian noise added to frozen step scores"""
    seed: int = 0
    """seed of prompt draws, sampling and minibatch order"""
    eval_seed: int = 12345
    """sampling seed of held-out evaluation"""
    device: str = ""
    """torch device of the policy, reference and reward model (empty = cuda if visible, else cpu)"""
    dtype: str = "float32"
    """model dtype"""
    checkpoint_every: int = 1
    """steps between checkpoints (0: none)"""
    stop_after: int = 0
    """stop after this many steps of this invocation (0: run to --steps); the run resumes later"""
    tensorboard: bool = True
    """also log metrics to TensorBoard (tb/)"""
    save_policy: bool = True
    """save the final policy to policy/"""
    threads: int = 0
    """torch CPU threads (0: leave as is)"""



OPTIMIZERS = ("adam", "sgd")

# options that may change between a run and its resumption
RESUMABLE_CHANGES = frozenset({"config", "out", "stop_after", "threads", "tensorboard", "save_policy", "device"})


def check_config(cfg: RLConfig) -> None:
    """InputError for a bad option (method, group size, filter, PRIME, optimizer), before any model loads."""
    from prmkit.rl.filtering import check_filter_options
    from prmkit.rl.prime import check_prime_options

    get_method(cfg.reward)
    if cfg.k < 2:
        raise InputError(f"--k must be >= 2 (group baselines), got {cfg.k}", field="k")
    check_filter_options(cfg)
    check_prime_options(cfg)
    if cfg.optimizer not in OPTIMIZERS:
        raise InputError(f"--optimizer must be adam or sgd, got {cfg.optimizer!r}", field="optimizer")


def filter_on(cfg: RLConfig) -> bool:
    """Whether the accuracy filter runs: --acc-filter on, or auto with a method that asks for it (PRIME)."""
    return cfg.acc_filter == "on" or (cfg.acc_filter == "auto" and get_method(cfg.reward).auto_filter)


def resume_ignores(cfg: RLConfig) -> frozenset:
    """Fields a resumed run may change (the reward model too when the method uses none)."""
    return RESUMABLE_CHANGES | ({"prm"} if not ADVANTAGES[cfg.reward].needs_rm else set())


def reward_model_spec(cfg: RLConfig, gym_data: bool):
    """The checked frozen reward model spec of a method that needs one (`prmkit.resolve`'s grammar), else None."""
    from prmkit.resolve import parse_rm_spec

    return parse_rm_spec(cfg.prm, "prm", gym_data, cfg.prm_token) if get_method(cfg.reward).needs_rm else None


def load_reward_model(spec: str, device: str = "", token: str = "", gym_data: bool = True):
    """A frozen reward model from a spec string (`prmkit.resolve`'s grammar) on `device`; returns (rm, description)."""
    from prmkit.resolve import parse_rm_spec

    checked = parse_rm_spec(spec, "prm", gym_data, token)
    return checked.load(device=device), checked.describe()


__all__ = ["RLConfig", "RESUMABLE_CHANGES", "check_config", "filter_on", "load_reward_model", "resume_ignores",
           "reward_model_spec"]
