"""The trainers' memory savers. LoRA (Hu et al. 2106.09685) for the reward-model trainers: low-rank adapters on every linear layer of
the backbone, the task head (a classifier's `score`/`classifier`, a custom value head) trained in full.

peft's `all-linear` shortcut plus its TOKEN_CLS task type both claim the classifier head (the first
wraps it in a LoRA layer, the second then refuses to keep a full copy of that wrapped layer), so the
targets are named here: the linear layers inside the base model, and the head modules beside it
(`modules_to_save`). A causal LM (implicit PRMs, LM-token readouts) has no new head: adapters go on
the base model's linear layers and the LM head stays frozen, as peft's `all-linear` does.
The adapted model is merged before saving (`merge`), so a saved dir loads as a plain HF model.
"""

from __future__ import annotations


def head_modules(model) -> list[str]:
    """Names of the top-level modules of a HF model that lie outside its base model and hold weights:
    the task head (`score`, `classifier`, `v_head`, ...). The LM head of a causal LM is not a new head
    (it is the output embedding) and is never listed."""
    prefix = getattr(model, "base_model_prefix", "")
    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = []
    for name, child in model.named_children():
        if name == prefix or child is out_emb:
            continue
        if any(p.numel() for p in child.parameters()):
            names.append(name)
    return names


def adapter_targets(model, heads: list[str]) -> list[str]:
    """Full names of the linear layers that get adapters: every `torch.nn.Linear` outside the heads and
    the output embedding."""
    import torch

    out_emb = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    targets = []
    for name, m in model.named_modules():
        if not isinstance(m, torch.nn.Linear) or m is out_emb:
            continue
        if any(name == h or name.startswith(h + ".") for h in heads):
            continue
        targets.append(name)
    return targets


def apply_lora(model, r: int, alpha: int, train_head: bool = True):
    """`model` wrapped with LoRA adapters of rank `r`; with `train_head` (classifier PRMs and ORMs) the
    task head is trained in full. Returns the peft model (only adapters and head require grad)."""
    from peft import LoraConfig, get_peft_model

    from prmkit.errors import InputError

    if r < 0:
        raise InputError(f"expected a LoRA rank >= 0, got {r}", field="lora_r")
    heads = head_modules(model) if train_head else []
    targets = adapter_targets(model, heads)
    if not targets:
        raise InputError("the backbone has no linear layers to put LoRA adapters on", field="lora_r")
    cfg = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, modules_to_save=heads or None)
    return get_peft_model(model, cfg)


def merge(model):
    """The adapters merged into the weights and the peft wrapper removed (identity for a plain model)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def lora_rm(rm, r: int, alpha: int):
    """Put LoRA on a reward model's backbone in place: a classifier head (prm/orm) trains in full; an LM
    readout or an implicit PRM trains adapters only."""
    readout = getattr(rm, "readout", None)
    classifier = readout is not None and readout.head == "classifier"
    rm.model = apply_lora(rm.model, r, alpha, train_head=classifier)
    return rm


def enable_gradient_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass (`use_reentrant=False`: exact, and no input
    gradients needed under LoRA)."""
    from prmkit.errors import InputError

    if not getattr(model, "supports_gradient_checkpointing", False):
        raise InputError(f"{type(model).__name__} does not support gradient checkpointing",
                         field="gradient_checkpointing")
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
