"""The decode loop's pure pieces, on hand-computed cases."""

from __future__ import annotations

import torch

from prmkit.policy.decode import StopMatcher, draw, take_uniforms, uniform_table


def test_stop_matcher_follows_str_endswith_across_pieces():
    pieces = ["", "a", "b", "\n", "ab\n", "xyz"]          # id 0 is a special token (empty piece)
    m = StopMatcher(pieces, ["b\n", "\n", "zz"], "cpu")
    assert m.L == 2
    buf = m.start(3)
    # row 0 writes "a" "b" "\n": ends with "b\n" (listed before "\n") at its third token
    # row 1 writes "xyz" "" "ab\n": "xyzab\n" ends with "b\n"; the empty piece changes nothing
    # row 2 writes "a" "\n" "": "a\n" ends with "\n" only
    rows = [[1, 2, 3], [5, 0, 4], [1, 3, 0]]
    want = [[-1, -1, -1], [-1, -1, 1], [0, 0, 1]]
    for t in range(3):
        buf = m.push(buf, torch.tensor([r[t] for r in rows]))
        assert m.hits(buf).tolist() == want[t]
    # the buffer holds the last two characters of each text
    texts = ["ab\n", "xyzab\n", "a\n"]
    assert [''.join(chr(c) for c in row if c >= 0) for row in buf.tolist()] == [t[-2:] for t in texts]


def test_a_long_piece_ends_a_short_stop_and_an_empty_stop_always_hits():
    m = StopMatcher(["", "hello\n"], ["o\n"], "cpu")
    assert m.hits(m.push(m.start(1), torch.tensor([1]))).tolist() == [0]
    e = StopMatcher(["", "q"], ["", "q"], "cpu")                 # "".endswith("") is True
    assert e.hits(e.push(e.start(1), torch.tensor([0]))).tolist() == [0]


def test_uniforms_go_to_active_rows_in_stream_order():
    # 2 prompts x 3 rows; a stream's draws do not depend on how they are split into calls
    table = torch.tensor([[.1, .2, .3, .4, .5, .6], [.7, .8, .9, .15, .25, .35]])
    used = torch.zeros(2, dtype=torch.long)
    u, used = take_uniforms(table, used, torch.tensor([True, True, True, True, False, True]), 3)
    assert used.tolist() == [3, 2]
    assert torch.allclose(u[[0, 1, 2, 3, 5]], torch.tensor([.1, .2, .3, .7, .8]))
    u, used = take_uniforms(table, used, torch.tensor([False, True, False, False, True, True]), 3)
    assert torch.allclose(u[[1, 4, 5]], torch.tensor([.4, .9, .15])) and used.tolist() == [4, 4]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(uniform_table([g1], 2, 4, "cpu")[0], torch.cat([torch.rand(k, generator=g2) for k in (2, 1, 5)]))


def test_draw_inverts_the_cdf_with_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    # cdf 0.5, 0.8, 1.0: u = 0.49 -> 0, 0.51 -> 1, 0.95 -> 2
    assert draw(logits.repeat(3, 1)[:3], torch.tensor([.49, .51, .95]), 1.0, 1.0).tolist() == [0, 1, 2]
    # top-p 0.7 keeps {0.5, 0.3} (0.5 < 0.7 before adding 0.3): renormalised cdf 0.625, 1.0
    assert draw(logits, torch.tensor([.6, .65]), 1.0, 0.7).tolist() == [0, 1]
    assert draw(logits, None, 0, 1.0).tolist() == [0, 0]
