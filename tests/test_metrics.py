"""Anticipation metrics checked against hand-computed values: top-k, MT5R (absent classes, unpredictable classes,
ignored labels, subsets), verb⊗noun action scores, EK100 tail classes, MoC and MoC at several β."""
import math

import pytest
import torch

from r3d.metrics import (
    action_scores_from_verb_noun,
    anticipation_metrics,
    ek100_tail_subsets,
    mean_over_classes_accuracy,
    mean_topk_recall,
    moc_at_betas,
    tail_classes,
    topk_accuracy,
)

# K = 4 classes. Ranking of each row, best first, written next to it.
SCORES = torch.tensor([
    [0.10, 0.60, 0.20, 0.05],  # 1, 2, 0, 3   label 1: top1 hit
    [0.50, 0.10, 0.30, 0.05],  # 0, 2, 1, 3   label 2: top1 miss, top2 hit
    [0.20, 0.30, 0.40, 0.05],  # 2, 1, 0, 3   label 0: top2 miss, top3 hit
    [0.10, 0.20, 0.30, 0.40],  # 3, 2, 1, 0   label 7: ≥ K, never a hit
    [0.90, 0.05, 0.03, 0.02],  # 0, ...       label -1: ignored
    [0.40, 0.10, 0.30, 0.20],  # 0, 2, 3, 1   label 1: top3 miss, top4 hit
])
LABELS = torch.tensor([1, 2, 0, 7, -1, 1])


def test_topk_accuracy_hand_example():
    # 5 labelled samples; hits: top1 {s0}, top2 {s0,s1}, top3 {s0,s1,s2}, top4 {s0,s1,s2,s5}
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(100 * 1 / 5)
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(100 * 2 / 5)
    assert topk_accuracy(SCORES, LABELS, 3) == pytest.approx(100 * 3 / 5)
    assert topk_accuracy(SCORES, LABELS, 4) == pytest.approx(100 * 4 / 5)
    # k > K is clamped to K: the class-7 sample is still a miss
    assert topk_accuracy(SCORES, LABELS, 10) == pytest.approx(100 * 4 / 5)


def test_topk_ignores_unlabelled_and_nan_when_nothing_labelled():
    assert topk_accuracy(SCORES[[0, 4]], LABELS[[0, 4]], 1) == pytest.approx(100.0)
    assert math.isnan(topk_accuracy(SCORES[[4]], LABELS[[4]], 1))
    assert math.isnan(mean_topk_recall(SCORES[[4]], LABELS[[4]], 5))


def test_mean_topk_recall_hand_example():
    # k = 2. Classes occurring in the labels: 0, 1, 2, 7 (class 3 does not occur and must not count).
    # recall: class 1 = 1/2 (s0 hit, s5 miss), class 2 = 1 (s1), class 0 = 0 (s2), class 7 = 0 (unpredictable)
    expected = 100 * (0.5 + 1.0 + 0.0 + 0.0) / 4
    assert mean_topk_recall(SCORES, LABELS, 2) == pytest.approx(expected)
    # averaging over all K = 4 classes + the unpredictable one would give a different number
    assert expected != pytest.approx(100 * 1.5 / 5)
    # k = 4 (= K): class 1 = 1, class 2 = 1, class 0 = 1, class 7 = 0
    assert mean_topk_recall(SCORES, LABELS, 4) == pytest.approx(100 * 3 / 4)
    # k = 5 clamps to K = 4
    assert mean_topk_recall(SCORES, LABELS, 5) == pytest.approx(100 * 3 / 4)


def test_mean_topk_recall_matches_per_class_loop():
    g = torch.Generator().manual_seed(0)
    scores = torch.rand(200, 12, generator=g)
    labels = torch.randint(-1, 15, (200,), generator=g)  # includes -1 and unpredictable 12..14
    recalls = []
    for c in sorted(set(labels.tolist()) - {-1}):
        rows = (labels == c).nonzero().view(-1)
        hits = [c in scores[r].argsort(descending=True)[:5].tolist() for r in rows.tolist()]
        recalls.append(sum(hits) / len(hits))
    assert mean_topk_recall(scores, labels, 5) == pytest.approx(100 * sum(recalls) / len(recalls))


def test_anticipation_metrics_structure_and_subsets():
    scores = {"verb": SCORES, "noun": SCORES.flip(1), "action": SCORES}
    labels = {"verb": LABELS, "noun": torch.tensor([2, 3, 0, 0, -1, 2]), "action": LABELS}
    unseen = torch.tensor([True, True, False, False, False, True])
    tail = {"verb": torch.tensor([False, False, True, True, False, False])}
    res = anticipation_metrics(scores, labels, subsets={"unseen": unseen, "tail": tail})
    assert res["num_samples"] == 6
    assert set(res) >= {"verb", "noun", "action", "num_samples"}
    assert res["verb"]["top1"] == pytest.approx(20.0)
    assert res["verb"]["top5"] == pytest.approx(80.0)
    assert res["verb"]["mt5r"] == pytest.approx(75.0)
    # noun scores = columns reversed: best noun s0 2 | s1 3 | s2 1 | s3 0 | s5 3
    # noun labels 2, 3, 0, 0, -, 2: top1 hits s0, s1, s3 -> 3/5
    assert res["noun"]["top1"] == pytest.approx(60.0)
    # unseen subset = s0, s1, s5 with action labels 1, 2, 1 -> top5 (=K) recall: class 1: 1, class 2: 1
    assert res["action"]["mt5r_unseen"] == pytest.approx(100.0)
    # tail mask only for verbs: s2 (label 0, hit in top 4) and s3 (label 7, never) -> (1 + 0) / 2
    assert res["verb"]["mt5r_tail"] == pytest.approx(50.0)
    assert "mt5r_tail" not in res["noun"] and "mt5r_tail" not in res["action"]
    assert res["num_samples_unseen"] == {"verb": 3, "noun": 3, "action": 3}


def test_single_noun_dataset_reports_the_verb_as_the_action():
    """One noun class (NTU-style labels): every action is (verb, 0), so action = verb. The action metrics are the
    verb's (not those of the separately trained action head, which disagree here) and the noun is marked."""
    verb = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    # action vocabulary [(2, 0), (0, 0), (1, 0)]: action head scores that rank differently from the verb head
    action = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.1, 0.1, 0.8]])
    verbs = torch.tensor([1, 0, 2, 1])
    actions = torch.tensor([2, 1, 0, 2])  # action id of (verb, 0)
    scores = {"verb": verb, "noun": torch.zeros(4, 1), "action": action}
    labels = {"verb": verbs, "noun": torch.zeros(4, dtype=torch.long), "action": actions}
    res = anticipation_metrics(scores, labels, subsets={"tail": {"verb": torch.tensor([True, False, False, True])}})
    # verb argmax 1, 0, 2, 0 against 1, 0, 2, 1: 3 of 4; the action head's argmax 0, 1, 2, 2 against 2, 1, 0, 2: 2 of 4
    assert res["verb"]["top1"] == pytest.approx(75.0) and topk_accuracy(action, actions, 1) == pytest.approx(50.0)
    assert res["action"] == {**res["verb"], "same_as": "verb"}
    assert res["noun"]["informative"] is False and res["noun"]["top1"] == pytest.approx(100.0)
    assert "informative" not in res["verb"] and res["num_samples_tail"] == {"verb": 2, "action": 2}
    # one verb class, several nouns: the noun is the action
    swapped = anticipation_metrics({"verb": torch.zeros(4, 1), "noun": verb, "action": action},
                                   {"verb": labels["noun"], "noun": verbs, "action": actions})
    assert swapped["action"]["same_as"] == "noun" and swapped["verb"]["informative"] is False
    assert swapped["action"]["top1"] == pytest.approx(75.0)
    # both factors informative: nothing changes
    plain = anticipation_metrics({"verb": verb, "noun": verb, "action": action},
                                 {"verb": verbs, "noun": verbs, "action": actions})
    assert plain["action"]["top1"] == pytest.approx(50.0) and "same_as" not in plain["action"]


def test_anticipation_metrics_needs_labels():
    with pytest.raises(KeyError, match="noun"):
        anticipation_metrics({"noun": SCORES}, {"verb": LABELS})


def test_action_scores_from_verb_noun_against_loop():
    g = torch.Generator().manual_seed(1)
    pv = torch.rand(3, 4, generator=g).softmax(-1)
    pn = torch.rand(3, 5, generator=g).softmax(-1)
    actions = torch.tensor([[0, 0], [3, 4], [1, 2], [1, 0], [2, 4]])
    out = action_scores_from_verb_noun(pv, pn, actions)
    assert out.shape == (3, 5)
    for i in range(3):
        for a, (v, n) in enumerate(actions.tolist()):
            assert out[i, a].item() == pytest.approx(pv[i, v].item() * pn[i, n].item())
    with pytest.raises(ValueError):
        action_scores_from_verb_noun(pv, pn, torch.tensor([[4, 0]]))


def test_tail_classes_ek100_definition():
    # counts: c0 50, c1 30, c2 10, c3 6, c4 4, c5 0 (total 100)
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 10 + [3] * 6 + [4] * 4 + [-1] * 3)
    # head covers 80%: c0 + c1 = 80 reaches it -> tail = the rest (including the class never seen)
    assert tail_classes(labels, 6).tolist() == [2, 3, 4, 5]
    # head covers 85%: c0 + c1 + c2 = 90 is the first prefix reaching 85 -> c2 is head
    assert tail_classes(labels, 6, fraction=0.85).tolist() == [3, 4, 5]
    # shuffled class ids change nothing but the ids
    perm = torch.tensor([3, 5, 0, 1, 4, 2])  # old id -> new id
    relabelled = torch.where(labels >= 0, perm[labels.clamp_min(0)], labels)
    assert tail_classes(relabelled, 6).tolist() == sorted(perm[[2, 3, 4, 5]].tolist())
    with pytest.raises(ValueError):
        tail_classes(labels, 6, fraction=0.0)


def test_ek100_tail_subsets():
    masks = ek100_tail_subsets(torch.tensor([0, 5, 0, 5]), torch.tensor([1, 1, 9, 9]), torch.tensor([5]),
                               torch.tensor([9]))
    assert masks["verb"].tolist() == [False, True, False, True]
    assert masks["noun"].tolist() == [False, False, True, True]
    assert masks["action"].tolist() == [False, True, True, True]


def test_moc_hand_example():
    pred = torch.tensor([0, 0, 1, 1, 2, 2])
    target = torch.tensor([0, 1, 1, 1, 2, -100])
    # class 0: 1/1, class 1: 2/3, class 2: 1/1; the ignored frame does not count
    assert mean_over_classes_accuracy(pred, target) == pytest.approx(100 * (1 + 2 / 3 + 1) / 3)
    # frame accuracy would be 4/5 = 80%: MoC is not frame accuracy
    assert mean_over_classes_accuracy(pred, target) != pytest.approx(80.0)
    assert math.isnan(mean_over_classes_accuracy(torch.tensor([1]), torch.tensor([-100])))


def test_moc_at_betas_futr_convention():
    # video A: L = 10, α = 0.2 -> future starts at frame 2; β = 0.1 -> 1 frame, β = 0.3 -> 3 frames
    # video B: L = 20 -> β = 0.1 -> 2 frames, β = 0.3 -> 6 frames
    pred_a, gt_a = torch.tensor([1, 1, 2, 0, 0, 0, 0, 0]), torch.tensor([1, 2, 2, 0, 0, 0, 0, 0])
    pred_b = torch.tensor([3, 1, 1, 1, 2, 2] + [0] * 10)
    gt_b = torch.tensor([3, 3, 1, 1, 2, 1] + [0] * 10)
    res = moc_at_betas([pred_a, pred_b], [gt_a, gt_b], [10, 20], observed_fraction=0.2, betas=(0.1, 0.3))
    # β=0.1: frames A[:1] (gt 1, ok) + B[:2] (gt 3 ok, gt 3 wrong) -> class 1: 1/1, class 3: 1/2
    assert res[0.1] == pytest.approx(100 * (1 + 0.5) / 2)
    # β=0.3: A[:3] gt 1,2,2 pred 1,1,2 ; B[:6] gt 3,3,1,1,2,1 pred 3,1,1,1,2,2
    # class 1: A0 ok, B2 ok, B3 ok, B5 wrong -> 3/4 ; class 2: A1 wrong, A2 ok, B4 ok -> 2/3 ; class 3: 1/2
    assert res[0.3] == pytest.approx(100 * (3 / 4 + 2 / 3 + 1 / 2) / 3)
    with pytest.raises(ValueError, match="needs"):
        moc_at_betas([pred_a[:1]], [gt_a[:1]], [10], observed_fraction=0.2, betas=(0.3,))
