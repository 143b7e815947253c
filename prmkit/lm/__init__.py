"""Small helpers over Hugging Face causal LMs shared by reward models and RL."""

from __future__ import annotations


def token_logprobs(model, input_ids, attention_mask):
    """log p(x_t | x_<t) for t = 1..L-1 of each row: shape (B, L-1), float32.

    Works with left or right padding: position ids are derived from the attention mask, so a
    row's values do not depend on how much padding its batch needs.
    """
    import torch

    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    return logp.gather(-1, input_ids[:, 1:].unsqueeze(-1)).squeeze(-1)


def resolve_device(device: str | None = "") -> str:
    """The torch device to load models on: an explicit name ("cpu", "cuda", "cuda:1", "mps") as given;
    "" or "auto" -> $PRMKIT_DEVICE if set, else "cuda" when a GPU is visible, else "cpu"; "cuda" under a
    multi-process launcher (WORLD_SIZE > 1) -> "cuda:$LOCAL_RANK", each process its own GPU."""
    import os

    import torch

    from prmkit.errors import InputError

    name = (device or "").strip()
    if name in ("", "auto"):
        name = os.environ.get("PRMKIT_DEVICE", "").strip() or ("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and int(os.environ.get("WORLD_SIZE", "1") or "1") > 1:
        name = f"cuda:{int(os.environ.get('LOCAL_RANK', '0') or '0')}"  # under a launcher: this process's GPU
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise InputError(f"unknown device {name!r}; expected cpu, cuda, cuda:N, mps or auto", field="device") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name!r} asked for, but torch sees no CUDA GPU (torch {torch.__version__})",
                         field="device")
    return name
