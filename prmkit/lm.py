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
