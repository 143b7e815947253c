"""Every input and option of `prmkit train prm|orm|implicit`, checked before the first model loads.

`check_train_inputs(cfg, kind)` reads the training data and the threshold-fit data (in any format the
commands accept), checks each record's targets, the model names (a local-looking path that does not
exist is an error at once) and the options, and decides the gym defaults: they apply only when the
data is the gym's (no --data, or every prompt is a gym prompt) and are said when used; on other data
a missing --model or --fit-data is an error that says what to pass. Seconds, no model load.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from prmkit.errors import InputError
from prmkit.schema import Trace

FIT_DATA_HELP = ("--fit-data FILE (traces with gold first errors: prmkit JSONL, or a ProcessBench JSON array "
                 "or JSONL) or --fit-split '' (save without a threshold)")


@dataclass
class TrainInputs:
    """What the checks found: the config with its gym-dependent defaults made explicit, the training
    traces (None for the gym recipe, sampled later), the fit traces read from --fit-data, and whether
    the data is the gym's."""

    cfg: object
    traces: list[Trace] | None
    fit: list[Trace] | None = None
    gym: bool = True
    notes: list[str] = field(default_factory=list)


def read_fit_traces(path: str) -> list[Trace]:
    """Threshold-fit traces from any format `eval processbench` reads, each with a gold first error."""
    from prmkit.evaluate.processbench import read_eval_traces, require_gold
    from prmkit.resolve import check_file

    check_file(path, "fit_data", "traces with gold first errors")
    traces = require_gold(read_eval_traces(path), path)
    if not traces:
        raise InputError("expected at least one trace to fit the threshold on, got none", file=path, field="fit_data")
    return traces


def _read_data(path: str) -> list[Trace]:
    from prmkit.resolve import is_hub_id
    from prmkit.train.data import read_training_traces

    if not Path(path).expanduser().exists() and not is_hub_id(path):
        raise InputError("no such file or directory (expected labelled traces: prmkit JSONL, TRL stepwise JSONL, "
                         "a datasets dir or a hub dataset id org/name)", file=path, field="data")
    traces = read_training_traces(str(Path(path).expanduser()) if Path(path).expanduser().exists() else path)
    if not traces:
        raise InputError("expected at least one trace, got none", file=path, field="data")
    return traces


def _check_targets(traces: list[Trace], kind: str, file: str) -> None:
    from prmkit.train.data import outcome_target, step_targets

    for i, t in enumerate(traces):
        (step_targets if kind == "prm" else outcome_target)(t, i + 1, file)


def _check_model(cfg, gym: bool) -> None:
    from prmkit.resolve import check_model_name, gym_default

    if not cfg.model:
        gym_default("model", gym, "starting from the shipped gym policy", "--model (a model dir or hub id)")
    else:
        check_model_name(cfg.model, "model", "a model")
    for name in ("loglik_lm", "ref_model"):
        value = getattr(cfg, name, "")
        if value and value != "none":
            check_model_name(value, name, "a causal LM")


def _check_options(cfg, kind: str) -> None:
    from prmkit.rewards.aggregate import AGGREGATIONS

    if cfg.lora_r < 0:
        raise InputError(f"expected a LoRA rank >= 0 (0 = full fine-tuning), got {cfg.lora_r}", field="lora_r")
    if cfg.aggregation not in AGGREGATIONS:
        raise InputError(f"expected one of {sorted(AGGREGATIONS)}, got {cfg.aggregation!r}", field="aggregation")
    if cfg.epochs <= 0 or cfg.batch_size < 1 or cfg.grad_accum < 1:
        raise InputError("expected --epochs > 0, --batch-size >= 1 and --grad-accum >= 1", field="epochs")
    from prmkit.rewards.limits import OVERFLOW

    if getattr(cfg, "overflow", "truncate") not in OVERFLOW:
        raise InputError(f"expected one of {OVERFLOW}, got {cfg.overflow!r}", field="overflow")
    if getattr(cfg, "max_length", 0) < 0:
        raise InputError(f"expected --max-length >= 0 (0 = the model's context), got {cfg.max_length}",
                         field="max_length")
    if kind != "implicit":
        from prmkit.rewards.readout import get_readout

        get_readout(cfg.readout)


def _check_launch(cfg) -> None:
    """Under a multi-process launcher: data parallel only, and on given data (the gym recipe samples and
    labels its data in one process; every process would repeat it into the same files)."""
    from prmkit.errors import InputError
    from prmkit.train.distributed import check_launch, launched

    check_launch()
    if launched() and not cfg.data:
        raise InputError("under accelerate launch, pass --data (labelled traces, e.g. from `prmkit label`); the gym "
                         "recipe without --data samples and labels in one process", field="data")


def check_train_inputs(cfg, kind: str) -> TrainInputs:
    """Check everything `train <kind>` will read, before any model loads (see the module doc)."""
    from prmkit.resolve import all_gym_prompts, gym_default

    _check_options(cfg, kind)
    _check_launch(cfg)
    traces = _read_data(cfg.data) if cfg.data else None
    if traces is not None:
        _check_targets(traces, kind, cfg.data)
    gym = traces is None or all_gym_prompts(t.prompt for t in traces)
    _check_model(cfg, gym)
    fit = None
    if cfg.fit_data:
        fit = read_fit_traces(cfg.fit_data)
    elif cfg.fit_split:
        gym_default("fit_data", gym, f"fitting the threshold on gym '{cfg.fit_split}' traces sampled by the gym policy",
                    FIT_DATA_HELP)
    if kind == "prm" and cfg.loglik_feature is None:
        # the likelihood feature loads a second copy of the backbone: on by default for the gym recipe only
        cfg = dataclasses.replace(cfg, loglik_feature=gym)
        if gym:
            from prmkit.resolve import note

            note("the step log-likelihood feature is on (gym default of --loglik-feature; --no-loglik-feature "
                 "turns it off)")
    return TrainInputs(cfg=cfg, traces=traces, fit=fit, gym=gym)
