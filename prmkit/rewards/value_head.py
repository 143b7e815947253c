"""Skywork-o1-Open-PRM's value head: a decoder plus a one-logit linear head read through a sigmoid.

Skywork's `PRM_MODEL` (github.com/SkyworkAI/skywork-o1-prm-inference, `model_utils/prm_model.py`) wraps
a causal LM and adds `v_head = ValueHead(config)` with `v_head.summary = nn.Linear(hidden, 1)` (dropout
before it, off at inference); its state dict is the LM's plus `v_head.summary.weight` and
`v_head.summary.bias`, and `return_probs=True` applies a sigmoid per position. Here the backbone is
loaded with stock transformers classes (`AutoModel`: the LM head is not needed) and the head from
those two tensors; `ValueHeadModel.forward` returns `.logits` (B,T,1), which `DiscriminativePRM`
reads as a one-logit classifier (score = sigmoid(logit)).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from prmkit.lm.kv_prefix import cache_kwarg

V_HEAD_KEYS = ("v_head.summary.weight", "v_head.summary.bias")
HEAD_FILE = "v_head.safetensors"   # where prmkit saves the head beside the backbone's own files


class ValueHeadModel(torch.nn.Module):
    """A decoder (`model`) and a one-logit head (`summary`, float32) at every position."""

    def __init__(self, backbone):
        super().__init__()
        self.model = backbone
        self.config = backbone.config
        self.summary = torch.nn.Linear(backbone.config.hidden_size, 1, dtype=torch.float32)

    def forward(self, input_ids=None, attention_mask=None, cache=None, **kw):
        from transformers.modeling_outputs import CausalLMOutputWithPast

        if cache is not None:   # the key/value cache, under the backbone's own argument name
            kw[cache_kwarg(self.model)] = cache
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **kw)
        logits = self.summary(out.last_hidden_state.to(self.summary.weight.dtype))      # (B,T,1)
        return CausalLMOutputWithPast(logits=logits, past_key_values=getattr(out, "past_key_values", None))

    def save_pretrained(self, out: str | Path, **kw: Any) -> None:
        """The backbone's own files plus the head as `v_head.summary.*` (Skywork's key names)."""
        from safetensors.torch import save_file

        self.model.save_pretrained(out, **kw)
        head = {V_HEAD_KEYS[0]: self.summary.weight, V_HEAD_KEYS[1]: self.summary.bias}
        save_file({k: v.detach().contiguous().cpu() for k, v in head.items()}, str(Path(out) / HEAD_FILE))


def value_head_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The `v_head.summary.*` tensors found in a local checkpoint dir (its safetensors, else .bin files)."""
    from safetensors import safe_open

    found: dict[str, torch.Tensor] = {}
    for f in sorted(Path(path).glob("*.safetensors")):
        with safe_open(str(f), framework="pt") as sf:
            found.update({k: sf.get_tensor(k) for k in V_HEAD_KEYS if k in sf.keys()})
    for f in sorted(Path(path).glob("*.bin")) if len(found) < len(V_HEAD_KEYS) else []:
        sd = torch.load(str(f), map_location="cpu", weights_only=True)
        found.update({k: sd[k] for k in V_HEAD_KEYS if k in sd})
    return found


def _local_dir(path: str) -> str:
    if Path(path).is_dir():
        return path
    from huggingface_hub import snapshot_download

    return snapshot_download(path, allow_patterns=["*.json", "*.safetensors", "*.bin", "*.model", "*.txt", "*.jinja"])


def load_value_head_model(path: str, dtype: Any = None) -> tuple[ValueHeadModel, dict]:
    """(`ValueHeadModel`, loading info) of a checkpoint in Skywork's layout, a local dir or a hub id.
    A missing head is listed in the info's `missing_keys`, so `check_head_loaded` refuses to score with
    a random one."""
    from transformers import AutoModel

    path = _local_dir(path)
    backbone, info = AutoModel.from_pretrained(path, dtype=dtype, output_loading_info=True)
    tensors = value_head_tensors(path)
    model = ValueHeadModel(backbone)
    missing = [k for k in V_HEAD_KEYS if k not in tensors]
    if not missing:
        model.summary.load_state_dict({k.rsplit(".", 1)[-1]: v.float() for k, v in tensors.items()})
    unexpected = [k for k in info.get("unexpected_keys") or [] if not k.startswith(("v_head.", "lm_head."))]
    return model, {"missing_keys": list(info.get("missing_keys") or []) + missing, "unexpected_keys": unexpected}
