"""RADHicaL levels: box-filtered level masks, class rules, the cascade's pixel rules, thresholds (hand cases)."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.usecases.radhical import levels, rules, search
from pipeline.usecases.radhical.cascade import PUBLISHED, Thresholds, compose, encode_prob


def test_level_mask_level2_by_hand():
    m = np.zeros((8, 8))
    m[2:4, 2:4] = 1
    # imfilter with ones(2,2)/4 (centre (1,1)): B(i,j) = mean of m(i..i+1, j..j+1); 1-based rows 2..4
    # hold .25 .5 .25 / .5 1 .5 / .25 .5 .25. Bilinear shrink by .5 (antialiased: half-width 2):
    # output 1 = .5 v1 + .375 v2 + .125 v3 (v0 mirrored to v1), output 2 = .125 v2 + .375 v3 + .375 v4 + .125 v5,
    # output 3 = .125 v4 + ... So out(2,2) = .125(.125*.25+.375*.5+.375*.25) + .375(.125*.5+.375+.375*.5)
    # + .375(.125*.25+.375*.5+.375*.25) = .390625 -> roundn .39; out(1,1) = .09765625 -> .10;
    # out(1,2) = .1953125 -> .20; out(1,3) = .01953125 -> .02; out(2,3) = .0390625 -> .04;
    # out(3,3) = .125 * .125 * .25 = .0039 -> 0.00 (rounded to "no positive pixel").
    expected = [[0.10, 0.20, 0.02, 0], [0.20, 0.39, 0.04, 0], [0.02, 0.04, 0, 0], [0, 0, 0, 0]]
    np.testing.assert_allclose(levels.level_mask(m, 2), expected, atol=1e-12)


def test_level_mask_full_block_and_sizes():
    ones = np.ones((8, 8))
    v = levels.level_mask(ones, 2)
    # the zero padding of imfilter halves the last row and column (B(8) = .5): output 4 =
    # .125 + .375 + .375 * .5 + .125 * .5 = .75 per axis, .5625 at the corner -> .56
    assert v[0, 0] == 1.0 and v[3, 3] == 0.56 and v[0, 3] == 0.75
    assert levels.level_mask(np.ones((40, 30)), 4).shape == (4, 3)  # ceil(.1 * size)
    assert levels.level_mask(np.ones((41, 30)), 3).shape == (11, 8)  # ceil(.25 * size)
    with pytest.raises(ValueError):
        levels.level_mask(ones, 1)


def test_coarse_class_rules():
    v = np.array([[1.0, 0.99, 0.5, 0.0], [0.01, 0.0, 0.995, 255.0]])
    neg = np.ones((4, 8), bool)  # base-size negative mask; 'nearest' halves it to 2x4
    neg[2, 6] = False  # the sample of output (2, 4) (1-based: rows 2x, columns 2x)
    c = levels.coarse_classes(v, neg, 2)
    assert c["p2"].tolist() == [[True, False, False, False], [False, False, True, True]]
    # exactly .99 is in no class (Q4); 0 < v < .99 is "mixed"
    assert c["p1"].tolist() == [[False, False, True, False], [True, False, False, False]]
    assert c["n0"].tolist() == [[False, False, False, True], [False, True, False, False]]
    assert not (c["p2"] | c["p1"] | c["n0"])[0, 1]


def test_eight_bit_masks_change_the_classes_q3():
    m = np.zeros((20, 20))
    m[0:10, 0:10] = 1
    m8 = m * 255
    neg = np.ones((20, 20), bool)
    c1 = levels.coarse_classes(levels.level_mask(m, 2), neg, 2)
    c8 = levels.coarse_classes(levels.level_mask(m8, 2), neg, 2)
    # with 0/255 values almost every partly covered pixel exceeds .99: class 1 nearly vanishes
    assert c1["p1"].sum() > 0 and c8["p1"].sum() < c1["p1"].sum() and c8["p2"].sum() > c1["p2"].sum()


def test_level1_classes_and_minimum_size():
    mask = np.zeros((11, 11))
    mask[5, 5] = 1
    neg = np.ones((11, 11), bool)
    from pipeline.nuclei import edge_ring

    c = levels.base_classes(mask, neg, edge_ring(mask, 3))
    assert c["p"].sum() == 1 and c["e"].sum() == 48 and c["b"].sum() == 121 - 48  # background excludes the ring
    assert levels.MIN_LEVEL_SIZE == 65 and levels.level_size(650, 4) == 65 and levels.level_size(649, 4) == 65
    assert levels.level_size(640, 4) == 64


def test_python_rule_and_q1_by_hand():
    probs = np.zeros((2, 2, 3))
    probs[:, :, 1] = 0.05
    probs[:, :, 2] = 0.10  # P1 + P2 = .15 >= .12 everywhere
    probs[1, 1, 2] = 0.2  # accepted (P2 >= .16)
    c, a = rules.python_pixels(probs.copy(), 0.12, 0.16, "old-numpy")
    # old numpy truncated probs[:,:,2][.16] to row 0: P2 of row 0 zeroed, so row 0's .05 < .12 is not computed
    assert c.tolist() == [[False, False], [True, False]] and a.tolist() == [[False, False], [False, True]]
    c, _ = rules.python_pixels(probs.copy(), 0.12, 0.16, "intended")
    assert c.tolist() == [[True, True], [True, False]]
    with pytest.raises(ValueError, match="Q1"):
        rules.python_pixels(probs.copy(), 0.12, 0.16, "refuse")
    # the base runs' integer default (1) is a valid index even for current numpy: row 1
    c, a = rules.python_pixels(probs.copy(), 0.0, 1, "refuse")
    assert c.all() and not a.any()
    # >= : a pixel exactly at the lower threshold is computed
    eq = np.zeros((1, 1, 3))
    eq[0, 0, 1] = 0.25
    assert rules.python_pixels(eq.copy(), 0.25, 2.0, "intended")[0].all()


def test_matlab_rule_by_hand():
    io = np.zeros((2, 2, 3))
    io[:, :, 1] = [[0.1, 0.3], [0.3, 0.1]]
    io[:, :, 2] = [[0.0, 0.0], [0.9, 0.2]]
    computed = np.array([[True, True], [True, False]])
    accepted = np.array([[False, False], [False, True]])
    comp_out, fixed_out = rules.matlab_out(io, computed, accepted, lower=0.3, upper=0.8)
    # strict >: (0,1) has exactly .3 and is not sent on; (1,0) is forced (P2 .9 > .8) and leaves comp_out;
    # (1,1) was not computed (zeroed) but stays fixed
    assert comp_out.tolist() == [[False, False], [False, False]]
    assert fixed_out.tolist() == [[False, False], [True, True]]
    c, a = rules.matlab_pixels(np.ones((2, 2), bool), fixed_out, (4, 4))
    assert a[2:, :].all() and not a[:2, :].any() and (c == ~a).all()
    p1 = np.array([[0.6, 0.4], [0.9, 0.9]])
    seg = rules.final_mask(p1, computed, accepted, 0.5267, fill=False)
    assert seg.tolist() == [[True, False], [True, True]]


def test_thresholds_validation_and_parse():
    PUBLISHED.validate()
    t = Thresholds.parse(".5267,.733,.18,.12", ".61,.8267,.16")
    assert t == PUBLISHED and t.for_run_of(3) == (0.12, 0.16) and t.for_run_of(1) == (0.733, 0.61)
    Thresholds((0.5, 0, 0, 0), (-1, 2.0, 2.0, 2.0)).validate()  # upper above 1: accept none
    with pytest.raises(ValueError, match=r"lower\(level 2\) = 1.5"):
        Thresholds.parse(".5,1.5,.1,.1", ".5,.5,.5")
    with pytest.raises(ValueError, match=r"upper\(level 3\) = -0.1"):
        Thresholds.parse(".5,.5,.1,.1", ".5,-.1,.5")
    with pytest.raises(ValueError, match="L1,L2,L3,L4"):
        Thresholds.parse(".5,.5", ".5,.5,.5")
    with pytest.raises(ValueError, match="numbers"):
        Thresholds.parse("a,b,c,d", ".5,.5,.5")


def test_compose_and_png_scaling():
    net = np.zeros((1, 3, 3), np.float32)
    net[0, 0] = [0.2, 0.7, 0.1]
    computed = np.array([[True, False, False]])
    accepted = np.array([[False, False, True]])
    prob = compose(net, computed, accepted)
    assert prob[0].tolist() == [[pytest.approx(0.2), pytest.approx(0.7), pytest.approx(0.1)], [1, 0, 0], [0, 0, 1]]
    # scipy.misc.imsave: (x - min) * 255 / (max - min) + .5, truncated; here min 0, max 1 (Q11);
    # .7 as the net's float32 is .69999999, so 178.4999 -> 178
    assert encode_prob(prob, "minmax")[0, 0].tolist() == [51, 178, 26]
    two = compose(np.full((1, 1, 2), 0.5, np.float32), np.ones((1, 1), bool), np.zeros((1, 1), bool))
    assert two[0, 0].tolist() == [0.5, 0.5, 0.0]
    # min-max stretches a map whose values do not span 0..1
    assert encode_prob(np.array([[[0.2, 0.4, 0.6]]]), "minmax").tolist() == [[[0, 128, 255]]]
    assert encode_prob(np.array([[[0.2, 0.4, 0.6]]]), "round").tolist() == [[[51, 102, 153]]]


def test_search_pick_within_budget_and_tolerance():
    pts = [
        {"t": 0.0, "f_score": 0.80, "computed_fraction": 1.30},
        {"t": 0.1, "f_score": 0.799, "computed_fraction": 0.60},
        {"t": 0.2, "f_score": 0.75, "computed_fraction": 0.20},
        {"t": 0.3, "f_score": 0.70, "computed_fraction": 0.10},
        {"t": 0.4, "f_score": None, "computed_fraction": 0.0},
    ]
    # no budget: best F .80; within .005: t 0 and .1; the least computation: .1
    assert search.pick(pts, None, 0.005) == (1, True)
    # budget .25: best F among t .2, .3 is .75 (t .2)
    assert search.pick(pts, 0.25, 0.005) == (2, True)
    assert search.pick(pts, 0.25, 0.06) == (3, True)
    # a budget nothing meets: the best F overall, flagged
    assert search.pick(pts, 0.01, 0.0) == (0, False)
