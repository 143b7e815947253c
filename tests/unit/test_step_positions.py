"""`step_end_positions_joint` against token ids built by hand: the position of each step's LAST
token, never the separator after it (issue 18 item 10: a shift onto the separator went unnoticed
because a generated completion ends in EOS, so the shifted last step still found a token)."""

from __future__ import annotations

from prmkit.steps import split_steps, step_end_positions_joint


def test_char_level_positions_by_hand(char_tokenizer):
    prompt = [char_tokenizer.convert_tokens_to_ids(c) for c in "Q:1,+2,*2\n"]
    completion = "1+2=3\n3*2=6\nA:6"
    ids = prompt + [char_tokenizer.convert_tokens_to_ids(c) for c in completion] + [char_tokenizer.eos_token_id]
    p = len(prompt)  # 10
    # by hand: "1+2=3" is completion chars 0..4, "\n" 5, "3*2=6" 6..10, "\n" 11, "A:6" 12..14, EOS 15
    assert p == 10
    assert step_end_positions_joint(char_tokenizer, ids, split_steps(completion), start=p) == [14, 20, 24]


def test_repeated_step_text_is_found_after_the_previous_step(char_tokenizer):
    """Two equal steps: the second one's end is searched after the first, not found again at the start."""
    completion = "2*1=2\n2*1=2\nA:2"
    ids = [char_tokenizer.convert_tokens_to_ids(c) for c in completion]
    assert step_end_positions_joint(char_tokenizer, ids, split_steps(completion)) == [4, 10, 14]


def test_bpe_positions_against_prefix_decoding(bpe_tokenizer):
    """Multi-character tokens: the expected position is the first token whose prefix decode reaches
    the step's last character (found by decoding growing prefixes, not by the offsets code)."""
    completion = "She makes 9 * 2 = 18 dollars.\nThe answer is 18."
    ids = bpe_tokenizer(completion, add_special_tokens=False)["input_ids"] + [bpe_tokenizer.eos_token_id]
    steps = split_steps(completion)
    ends, cursor = [], 0
    for step in steps:
        cursor = completion.index(step, cursor) + len(step)
        ends.append(next(j for j in range(len(ids)) if len(bpe_tokenizer.decode(ids[: j + 1])) >= cursor))
    assert step_end_positions_joint(bpe_tokenizer, ids, steps) == ends
    assert ends[-1] == len(ids) - 2  # the last step ends on the token before EOS
