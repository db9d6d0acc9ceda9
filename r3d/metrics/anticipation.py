"""Anticipation metrics: top-k accuracy, class-mean top-k recall (MT5R), mean over classes (MoC). Results in percent.

Next-action protocol (EPIC-KITCHENS-100 style), as the official EK100 anticipation evaluator computes
them (github epic-kitchens/C3-Action-Anticipation, `evaluate_anticipation_json_ek100.py`):

- top-k accuracy: fraction of samples whose label is among the k highest scores.
- MT5R (class-mean top-5 recall): per class, the fraction of its samples whose label is in the top 5; averaged over the
  classes that *occur in the evaluated labels* (not over all classes of the vocabulary).
- Subsets: EK100 reports MT5R overall, on unseen participants and on tail classes. The official tail subset is
  per task: verb MT5R on samples with a tail verb, noun MT5R on samples with a tail noun, action MT5R on samples whose
  verb *or* noun is a tail class (`ek100_tail_subsets` builds exactly these masks).

Datasets with a single noun (or verb) class — NTU, UTKinect, a depth dataset labelled with one class per clip —
have exactly one action per verb (noun): the action *is* the verb. `anticipation_metrics` then reports the action
metrics as the informative factor's (``"same_as": "verb"``), so action and verb numbers cannot disagree although the
action head is trained separately, and marks the single-class factor ``"informative": False`` (its top-k is 100 % by
construction and says nothing about the model).

Label conventions (r3d's dataset contract): a label < 0 means "no label" and the sample is ignored; a label ≥ K (e.g. an
action pair unseen in training, which the model has no score for) counts as a miss, and in MT5R its class counts with
recall 0 — as in the official evaluator, where a ground-truth action absent from the submitted scores can never rank.
A metric over zero labelled samples is undefined and returned as NaN.

Long-term protocol (FUTR style, what R3D reports): MoC = mean over classes of frame-wise accuracy, the per-class frame
counts pooled over all evaluated videos before averaging (as FUTR's `predict.py` accumulates them).
"""
from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import torch

Tensor = torch.Tensor
SubsetMask = Union[Tensor, Mapping[str, Tensor]]

FACTORS = ("verb", "noun")

__all__ = [
    "topk_accuracy", "mean_topk_recall", "anticipation_metrics", "FACTORS", "action_scores_from_verb_noun",
    "tail_classes", "ek100_tail_subsets", "mean_over_classes_accuracy", "moc_at_betas", "moc_counts", "moc_from_counts",
]


def _check_scores_labels(scores: Tensor, labels: Tensor) -> None:
    if scores.dim() != 2:
        raise ValueError(f"scores must be (N, K), got shape {tuple(scores.shape)}")
    if labels.dim() != 1 or labels.shape[0] != scores.shape[0]:
        raise ValueError(f"labels must be (N,) with N = {scores.shape[0]} (the rows of scores), "
                         f"got shape {tuple(labels.shape)}")


def _topk_hits(scores: Tensor, labels: Tensor, k: int) -> Tensor:
    """(N,) bool: is labels[i] among the top-k classes of scores[i] (labels ≥ K are misses). k is clamped to [1, K]."""
    if k < 1:
        raise ValueError(f"k must be ≥ 1, got {k}")
    num_classes = scores.shape[1]
    if num_classes == 0:
        return torch.zeros_like(labels, dtype=torch.bool)
    top = scores.topk(min(int(k), num_classes), dim=1).indices          # (N, k)
    return (top == labels.to(top.device).view(-1, 1)).any(dim=1)       # a label ≥ K or < 0 never matches


def topk_accuracy(scores: Tensor, labels: Tensor, k: int = 1) -> float:
    """Top-k accuracy in percent.

    Args:
        scores: (N, K) class scores (logits or probabilities — only their order matters).
        labels: (N,) int class ids. < 0: no label, ignored. ≥ K: unpredictable class, counted as wrong.
        k: how many top classes count as a hit; clamped to K.

    Returns:
        100 · hits / (labelled samples); NaN when no sample has a label.
    """
    _check_scores_labels(scores, labels)
    labels = labels.long()
    valid = labels >= 0
    n = int(valid.sum())
    if n == 0:
        return math.nan
    hits = _topk_hits(scores[valid], labels[valid], k)
    return 100.0 * float(hits.sum()) / n


def mean_topk_recall(scores: Tensor, labels: Tensor, k: int = 5) -> float:
    """Class-mean top-k recall (MT5R for k = 5) in percent.

    Per class c occurring in `labels`: recall_c = fraction of the samples labelled c whose label is in the top k;
    the result is the mean of recall_c over the classes that occur (classes absent from `labels` do not count, classes
    ≥ K occur with recall 0).

    Args:
        scores: (N, K) class scores.
        labels: (N,) int class ids; < 0 ignored.
        k: top-k; clamped to K.

    Returns:
        100 · mean_c recall_c; NaN when no sample has a label.
    """
    _check_scores_labels(scores, labels)
    labels = labels.long()
    valid = labels >= 0
    if not bool(valid.any()):
        return math.nan
    labels = labels[valid]
    hits = _topk_hits(scores[valid], labels, k).double().cpu()
    classes, inverse = torch.unique(labels.cpu(), return_inverse=True)
    hit_sum = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, hits)
    count = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(hits))
    return 100.0 * float((hit_sum / count).mean())


def anticipation_metrics(scores: Mapping[str, Tensor], labels: Mapping[str, Tensor], ks: Sequence[int] = (1, 5),
                         subsets: Optional[Mapping[str, SubsetMask]] = None, recall_k: int = 5) -> Dict[str, object]:
    """Top-k accuracies and MT5R of every task (verb, noun, action), overall and on subsets, in percent.

    Args:
        scores: {task: (N, K_task)} scores, e.g. {"verb": (N,V), "noun": (N,Nn), "action": (N,A)}.
        labels: {task: (N,)} class ids (< 0: no label; ≥ K_task: unpredictable, a miss). Every task of `scores` needs
            its labels.
        ks: the k of the reported top-k accuracies (keys "top1", "top5", ...).
        subsets: optional {name: mask}. A mask is a bool (N,) tensor applied to every task, or a dict {task: (N,) bool}
            giving one mask per task (tasks missing from it are not reported for that subset) — EK100's tail subset is
            per task, see `ek100_tail_subsets`. Reported as "mt5r_<name>" inside each task's dict.
        recall_k: the k of the class-mean recall (5 → "mt5r").

    Returns:
        {"verb": {"top1", "top5", "mt5r", "mt5r_<subset>"...}, "noun": {...}, "action": {...}, "num_samples": N,
        "num_samples_<subset>": {task: labelled-or-not samples in the subset}} (floats in percent; NaN if undefined).
        When verb or noun has a single class (K = 1) and the other has more, that factor's dict gets
        ``"informative": False`` and "action" is a copy of the other factor's dict plus ``"same_as": <factor>``
        (module docstring).
    """
    out: Dict[str, object] = {}
    num = None
    recall_key = "mt5r" if recall_k == 5 else f"mt{recall_k}r"
    for task, s in scores.items():
        if task not in labels:
            raise KeyError(f"anticipation_metrics: no labels for task '{task}' (labels have {sorted(labels)})")
        y = labels[task]
        _check_scores_labels(s, y)
        if num is None:
            num = s.shape[0]
        elif s.shape[0] != num:
            raise ValueError(f"anticipation_metrics: task '{task}' has {s.shape[0]} samples, the others {num}")
        res = {f"top{k}": topk_accuracy(s, y, k) for k in ks}
        res[recall_key] = mean_topk_recall(s, y, recall_k)
        for name, mask in (subsets or {}).items():
            m = mask.get(task) if isinstance(mask, Mapping) else mask
            if m is None:
                continue
            m = m.to(device=s.device, dtype=torch.bool).view(-1)
            if m.shape[0] != s.shape[0]:
                raise ValueError(f"anticipation_metrics: subset '{name}' mask has {m.shape[0]} entries for "
                                 f"{s.shape[0]} samples")
            res[f"{recall_key}_{name}"] = mean_topk_recall(s[m], y.to(s.device)[m], recall_k)
            out.setdefault(f"num_samples_{name}", {})[task] = int(m.sum())
        out[task] = res
    out["num_samples"] = int(num or 0)
    _mark_single_class_factors(out, {task: s.shape[1] for task, s in scores.items()})
    return out


def _mark_single_class_factors(out: Dict[str, object], num_classes: Mapping[str, int]) -> None:
    """With one single-class factor (K = 1) and one informative one, action metrics := the informative factor's."""
    single = [t for t in FACTORS if num_classes.get(t) == 1]
    informative = [t for t in FACTORS if num_classes.get(t, 0) > 1]
    for t in single:
        out[t] = {**out[t], "informative": False}
    if single and len(informative) == 1 and "action" in out:
        src = informative[0]
        out["action"] = {**out[src], "same_as": src}
        for key, counts in out.items():
            if key.startswith("num_samples_") and src in counts:
                counts["action"] = counts[src]


def action_scores_from_verb_noun(verb_probs: Tensor, noun_probs: Tensor, actions: Tensor) -> Tensor:
    """Action probabilities of an action vocabulary from independent verb and noun probabilities.

    p(a = (v, n)) = p(v) · p(n). The inputs are used as given (apply softmax to logits first).

    Args:
        verb_probs: (N, V) verb probabilities.
        noun_probs: (N, Nn) noun probabilities.
        actions: (A, 2) long, row a = (verb id, noun id) of action a.

    Returns:
        (N, A) action scores.
    """
    actions = torch.as_tensor(actions, dtype=torch.long, device=verb_probs.device)
    if actions.dim() != 2 or actions.shape[1] != 2:
        raise ValueError(f"actions must be (A, 2) (verb, noun) pairs, got shape {tuple(actions.shape)}")
    if actions.numel() and (int(actions[:, 0].max()) >= verb_probs.shape[1] or int(actions[:, 1].max())
                            >= noun_probs.shape[1] or int(actions.min()) < 0):
        raise ValueError(f"actions reference a verb/noun outside [0, {verb_probs.shape[1]}) x "
                         f"[0, {noun_probs.shape[1]})")
    return verb_probs[:, actions[:, 0]] * noun_probs[:, actions[:, 1]]


def tail_classes(train_labels: Tensor, num_classes: int, fraction: float = 0.8) -> Tensor:
    """EPIC-KITCHENS-100's tail classes of a label distribution.

    EK100 (Damen et al., IJCV 2022, "Rescaling Egocentric Vision", §4) splits classes into a head — the largest classes
    that together account for 80% of the training instances — and a tail: the remaining, smallest classes, which hold
    the last ~20% of the instances (EPIC_100_tail_verbs.csv lists 86 of the 97 verbs). Here: sort classes by training
    count (descending, ties by class id); the head is the shortest prefix whose cumulative count reaches
    `fraction` of all instances (the class that crosses the threshold is head); every other class — including classes
    with no training instance — is tail.

    Args:
        train_labels: (M,) int training labels (< 0 ignored, ≥ num_classes is an error).
        num_classes: size of the vocabulary.
        fraction: share of training instances the head covers (EK100: 0.8), in (0, 1].

    Returns:
        (num_tail,) long, sorted tail class ids.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction (share of instances covered by the head) must be in (0, 1], got {fraction}")
    y = torch.as_tensor(train_labels, dtype=torch.long).view(-1).cpu()
    y = y[y >= 0]
    if y.numel() and int(y.max()) >= num_classes:
        raise ValueError(f"train_labels contain class {int(y.max())} ≥ num_classes = {num_classes}")
    counts = torch.bincount(y, minlength=num_classes).double()
    total = float(counts.sum())
    if total == 0:
        return torch.arange(num_classes)
    order = torch.argsort(-counts, stable=True)
    cum = torch.cumsum(counts[order], 0)
    # number of head classes = first position where the cumulative share reaches the fraction (+1)
    n_head = int((cum < fraction * total - 1e-9).sum()) + 1
    return torch.sort(order[n_head:]).values


def ek100_tail_subsets(verb_labels: Tensor, noun_labels: Tensor, tail_verbs: Tensor, tail_nouns: Tensor
                       ) -> Dict[str, Tensor]:
    """EK100's per-task tail masks: {"verb": tail verb, "noun": tail noun, "action": tail verb or tail noun}, each (N,).

    Pass as `subsets={"tail": ek100_tail_subsets(...)}` to `anticipation_metrics`.
    """
    v = torch.isin(verb_labels.long(), torch.as_tensor(tail_verbs, dtype=torch.long, device=verb_labels.device))
    n = torch.isin(noun_labels.long(), torch.as_tensor(tail_nouns, dtype=torch.long, device=noun_labels.device))
    return {"verb": v, "noun": n, "action": v | n}


def mean_over_classes_accuracy(pred: Tensor, target: Tensor, ignore_index: int = -100) -> float:
    """MoC: frame-wise accuracy of each class present in `target`, averaged over those classes, in percent.

    Args:
        pred: (F,) predicted frame labels (frames of several videos may be concatenated: counts are pooled).
        target: (F,) ground-truth frame labels; frames equal to `ignore_index` are skipped.
        ignore_index: target value of frames that do not count.

    Returns:
        100 · mean_c (#frames of c predicted c / #frames of c); NaN when no frame counts.
    """
    pred = torch.as_tensor(pred).view(-1).long().cpu()
    target = torch.as_tensor(target).view(-1).long().cpu()
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same number of frames, got {pred.numel()} and "
                         f"{target.numel()}")
    keep = target != ignore_index
    pred, target = pred[keep], target[keep]
    if target.numel() == 0:
        return math.nan
    classes, inverse = torch.unique(target, return_inverse=True)
    correct = (pred == target).double()
    hit = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, correct)
    count = torch.zeros(len(classes), dtype=torch.float64).index_add_(0, inverse, torch.ones_like(correct))
    return 100.0 * float((hit / count).mean())


def moc_at_betas(pred: Sequence[Tensor], target: Sequence[Tensor], video_lengths: Sequence[int],
                 observed_fraction: float, betas: Sequence[float] = (0.1, 0.2, 0.3, 0.5),
                 ignore_index: int = -100) -> Dict[float, float]:
    """MoC for several prediction horizons β of the long-term protocol (FUTR / Abu Farha et al. convention).

    For a video of L frames observed up to α = `observed_fraction`, the evaluated future of horizon β is the frames
    [int(α·L), min(L, int((α+β)·L))) — β is a fraction of the *whole video*, not of the unobserved part — i.e. the
    first min(L, int((α+β)·L)) − int(α·L) frames of that video's future, with FUTR's float arithmetic
    (`predict.py`: eval_len = int((obs_p + p) · vid_len)). Counts are pooled over videos, then MoC.

    Args:
        pred: per video, (F_i,) predicted labels of the future frames, starting at the first unobserved frame.
        target: per video, (F_i',) ground-truth labels of the same frames (at least as many as the largest β needs).
        video_lengths: L_i, total frames of each video.
        observed_fraction: α.
        betas: horizons β.
        ignore_index: target frames with this value do not count.

    Returns:
        {β: MoC in percent}.
    """
    if not (len(pred) == len(target) == len(video_lengths)):
        raise ValueError(f"pred, target and video_lengths must have one entry per video, got {len(pred)}, "
                         f"{len(target)}, {len(video_lengths)}")
    out: Dict[float, float] = {}
    for beta in betas:
        ps, ts = [], []
        for i, (p, t, length) in enumerate(zip(pred, target, video_lengths)):
            start = int(observed_fraction * length)
            n = max(0, min(int(length), int((observed_fraction + beta) * length)) - start)
            p, t = torch.as_tensor(p).view(-1), torch.as_tensor(t).view(-1)
            if p.numel() < n or t.numel() < n:
                raise ValueError(f"video {i}: β = {beta} needs {n} future frames, got {p.numel()} predicted and "
                                 f"{t.numel()} ground-truth")
            ps.append(p[:n])
            ts.append(t[:n])
        out[float(beta)] = mean_over_classes_accuracy(torch.cat(ps) if ps else torch.zeros(0),
                                                      torch.cat(ts) if ts else torch.zeros(0), ignore_index)
    return out


def moc_counts(pred: Tensor, target: Tensor, lengths: Tensor, num_classes: int) -> Tuple[Tensor, Tensor]:
    """Per-sample, per-horizon, per-class frame counts behind MoC, so that they can be summed across batches and
    processes (fixed shapes) before `moc_from_counts` takes the mean over classes.

    Args:
        pred: (B, F) predicted labels of the future frames (padding: any value).
        target: (B, F) ground-truth labels; frames < 0 or ≥ `num_classes` (padding, ignored) do not count.
        lengths: (B, nβ) how many leading future frames each horizon evaluates (`LongTermDataset` ``beta_lengths``:
            min(L, int((α+β)·L)) − int(α·L), the frames `moc_at_betas` takes).
        num_classes: K, the ground-truth classes counted.

    Returns:
        (hits, counts), each (B, nβ, K) float64: frames of class c within the horizon predicted c / all such frames.
    """
    target = torch.as_tensor(target).long()
    pred = torch.as_tensor(pred, device=target.device).long()
    lengths = torch.as_tensor(lengths, device=target.device).long()
    b, f = target.shape
    within = torch.arange(f, device=target.device).view(1, 1, f) < lengths.view(b, -1, 1)       # (B, nβ, F)
    valid = (target >= 0) & (target < num_classes)                                                # (B, F)
    onehot = torch.nn.functional.one_hot(target.clamp(0, max(num_classes - 1, 0)), num_classes).double()
    onehot = onehot * valid.unsqueeze(-1)                                                         # (B, F, K)
    counts = torch.einsum("bnf,bfk->bnk", within.double(), onehot)
    hits = torch.einsum("bnf,bfk->bnk", within.double(), onehot * (pred == target).unsqueeze(-1))
    return hits, counts


def moc_from_counts(hits: Tensor, counts: Tensor) -> float:
    """MoC in percent from `moc_counts` output summed over any leading dims: (..., K) -> mean over the classes with
    frames of hits_c / counts_c; NaN when no frame counts."""
    h = torch.as_tensor(hits, dtype=torch.float64).reshape(-1, hits.shape[-1]).sum(0)
    c = torch.as_tensor(counts, dtype=torch.float64).reshape(-1, counts.shape[-1]).sum(0)
    seen = c > 0
    if not bool(seen.any()):
        return math.nan
    return 100.0 * float((h[seen] / c[seen]).mean())
