"""EPIC-KITCHENS-100 action anticipation challenge submission: export and validation.

Format (as checked by the official evaluator, github epic-kitchens/C3-Action-Anticipation,
`evaluate_anticipation_json_ek100.py`, `validate_submission`)::

    {"version": "0.2", "challenge": "action_anticipation",
     "sls_pt": 0-5, "sls_tl": 0-5, "sls_td": 0-5,          # supervision levels scale (pre-training, labels, data)
     "results": {narration_id: {"verb": {"0": s, ..., "96": s},          # every verb class, keys str(class id)
                                "noun": {"0": s, ..., "299": s},         # every noun class
                                "action": {"v,n": s, ...}}}}             # exactly 100 "verb,noun" keys

Scores are floats; only their order within a segment matters (the evaluator ranks them). `validate_ek100_json` is
a little stricter than the official validator: keys must be canonical ("3", "3,17" — no spaces or leading zeros),
scores must be finite, and action entries are required in every segment (r3d always writes them).
"""
from __future__ import annotations

import json
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

Tensor = torch.Tensor

VERSION = "0.2"
CHALLENGE = "action_anticipation"
NUM_ACTION_SCORES = 100
SLS_KEYS = ("sls_pt", "sls_tl", "sls_td")
_CLASS_KEY = re.compile(r"^(0|[1-9][0-9]*)$")
_ACTION_KEY = re.compile(r"^(0|[1-9][0-9]*),(0|[1-9][0-9]*)$")

__all__ = ["export_ek100_json", "validate_ek100_json", "assert_valid_ek100", "top_action_entries"]


def _sls_fields(sls: Mapping[str, Any]) -> Dict[str, int]:
    out = {}
    for key in SLS_KEYS:
        short = key[len("sls_"):]
        value = sls.get(key, sls.get(short))
        if value is None:
            raise ValueError(f"sls must give '{key}' (or '{short}'), an integer 0-5; got keys {sorted(sls)}")
        if isinstance(value, bool) or int(value) != value or not 0 <= int(value) <= 5:
            raise ValueError(f"sls '{key}' must be an integer 0-5, got {value!r}")
        out[key] = int(value)
    return out


def top_action_entries(verb_scores: Tensor, noun_scores: Tensor, action_scores: Tensor, actions: Tensor,
                       topk: int = NUM_ACTION_SCORES, scores_are_probabilities: bool = False,
                       chunk: int = 64) -> Tuple[Tensor, Tensor, Tensor]:
    """The `topk` (verb, noun) pairs and scores of every segment, for the JSON "action" field.

    If the vocabulary has A ≥ topk actions: the topk actions by `action_scores`. If A < topk (EK100 requires exactly
    100 per segment): all A vocabulary actions, then the missing topk − A are filled with the (verb, noun) pairs
    *outside* the vocabulary ranked by p(v)·p(n) (p = softmax of the verb / noun scores, or the scores themselves when
    `scores_are_probabilities`). Filled pairs are given scores strictly below the segment's lowest vocabulary action
    score (lowest − (j+1)·δ, δ = 1e-3·max(1, |lowest|)), so the model's own action ranking is unchanged and the fill
    only extends it; with A = 0 the products themselves are the scores.

    Args:
        verb_scores: (N, V). noun_scores: (N, Nn). action_scores: (N, A). actions: (A, 2) (verb, noun) of each action.
        topk: pairs per segment.
        scores_are_probabilities: the verb/noun scores are already probabilities (skip the softmax for the fill).
        chunk: segments per step when filling (memory is chunk · V · Nn floats).

    Returns:
        (verbs (N, topk) long, nouns (N, topk) long, scores (N, topk) float64), best first.
    """
    verb_scores, noun_scores = verb_scores.detach().float().cpu(), noun_scores.detach().float().cpu()
    action_scores = action_scores.detach().float().cpu()
    actions = torch.as_tensor(actions, dtype=torch.long).cpu().view(-1, 2)
    n, num_verbs = verb_scores.shape
    num_nouns = noun_scores.shape[1]
    a = actions.shape[0]
    if action_scores.shape != (n, a):
        raise ValueError(f"action_scores must be (N, A) = ({n}, {a}), got {tuple(action_scores.shape)}")
    if a and (int(actions[:, 0].max()) >= num_verbs or int(actions[:, 1].max()) >= num_nouns or int(actions.min()) < 0):
        raise ValueError(f"actions reference a verb/noun outside [0, {num_verbs}) x [0, {num_nouns})")
    flat_ids = actions[:, 0] * num_nouns + actions[:, 1]
    if torch.unique(flat_ids).numel() != a:
        raise ValueError("actions contain a duplicate (verb, noun) pair; each action must be listed once")
    if num_verbs * num_nouns < topk:
        raise ValueError(f"{num_verbs} verbs x {num_nouns} nouns give fewer than the {topk} action pairs required")
    k = min(topk, a)
    top = action_scores.topk(k, dim=1) if k else None
    verbs = actions[top.indices, 0] if k else torch.zeros(n, 0, dtype=torch.long)
    nouns = actions[top.indices, 1] if k else torch.zeros(n, 0, dtype=torch.long)
    scores = top.values.double() if k else torch.zeros(n, 0, dtype=torch.float64)
    need = topk - k
    if need == 0:
        return verbs, nouns, scores
    pv = verb_scores.double() if scores_are_probabilities else verb_scores.double().softmax(-1)
    pn = noun_scores.double() if scores_are_probabilities else noun_scores.double().softmax(-1)
    in_vocab = torch.zeros(num_verbs * num_nouns, dtype=torch.bool)
    in_vocab[flat_ids] = True
    fill_v, fill_n, fill_s = [], [], []
    for i in range(0, n, chunk):
        prod = (pv[i:i + chunk, :, None] * pn[i:i + chunk, None, :]).reshape(-1, num_verbs * num_nouns)
        prod = prod.masked_fill(in_vocab, -math.inf)
        best = prod.topk(need, dim=1)
        fill_v.append(best.indices // num_nouns)
        fill_n.append(best.indices % num_nouns)
        fill_s.append(best.values)
    fv, fn, fs = torch.cat(fill_v), torch.cat(fill_n), torch.cat(fill_s)
    if k:
        lowest = scores[:, -1:]
        delta = 1e-3 * lowest.abs().clamp_min(1.0)
        fs = lowest - delta * torch.arange(1, need + 1, dtype=torch.float64)
    return torch.cat([verbs, fv], 1), torch.cat([nouns, fn], 1), torch.cat([scores, fs], 1)


def export_ek100_json(path: Union[str, Path], narration_ids: Sequence[str], verb_scores: Tensor, noun_scores: Tensor,
                      action_scores: Tensor, actions: Tensor, sls: Mapping[str, Any],
                      topk_actions: int = NUM_ACTION_SCORES, scores_are_probabilities: bool = False
                      ) -> Dict[str, Any]:
    """Write an EK100 action-anticipation submission (version "0.2") and return it as a dict.

    Args:
        path: output .json (written atomically; parent folders are created).
        narration_ids: N segment ids (unique).
        verb_scores: (N, V) — all V verb scores are written, keys "0".."V-1".
        noun_scores: (N, Nn) — all noun scores, keys "0".."Nn-1".
        action_scores: (N, A) scores of the action vocabulary `actions`.
        actions: (A, 2) (verb, noun) of each action.
        sls: {"sls_pt", "sls_tl", "sls_td"} (or "pt", "tl", "td") supervision levels, integers 0-5.
        topk_actions: action scores per segment (EK100: 100). Fewer than that in the vocabulary are filled with
            out-of-vocabulary verb⊗noun pairs, see `top_action_entries`.
        scores_are_probabilities: verb/noun scores are probabilities already (only used to rank the fill).

    Returns:
        The submission dict that was written.
    """
    ids = [str(x) for x in narration_ids]
    n = len(ids)
    if len(set(ids)) != n:
        dup = next(x for x in ids if ids.count(x) > 1)
        raise ValueError(f"narration_ids must be unique; '{dup}' appears more than once")
    for name, t in (("verb_scores", verb_scores), ("noun_scores", noun_scores), ("action_scores", action_scores)):
        if t.dim() != 2 or t.shape[0] != n:
            raise ValueError(f"{name} must be (N, K) with N = {n} narration ids, got {tuple(t.shape)}")
    header = {"version": VERSION, "challenge": CHALLENGE, **_sls_fields(sls)}
    av, an, ascore = top_action_entries(verb_scores, noun_scores, action_scores, actions, topk_actions,
                                        scores_are_probabilities)
    vs = verb_scores.detach().double().cpu().tolist()
    ns = noun_scores.detach().double().cpu().tolist()
    av, an, ascore = av.tolist(), an.tolist(), ascore.tolist()
    results = {}
    for i, nid in enumerate(ids):
        results[nid] = {
            "verb": {str(c): s for c, s in enumerate(vs[i])},
            "noun": {str(c): s for c, s in enumerate(ns[i])},
            "action": {f"{v},{nn}": s for v, nn, s in zip(av[i], an[i], ascore[i])},
        }
    submission = {**header, "results": results}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf8") as f:
            json.dump(submission, f)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return submission


def _is_score(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_ek100_json(path_or_dict: Union[str, Path, Mapping[str, Any]], num_verbs: int, num_nouns: int,
                        num_actions: int = NUM_ACTION_SCORES, narration_ids: Optional[Sequence[str]] = None,
                        max_problems: int = 50) -> List[str]:
    """Problems of an EK100 action-anticipation submission; an empty list means valid.

    Checks: version "0.2"; challenge "action_anticipation"; sls_pt/sls_tl/sls_td integers 0-5; a "results" object;
    per segment: "verb" with exactly the keys "0".."num_verbs-1", "noun" likewise, "action" with exactly
    `num_actions` keys "v,n" (v < num_verbs, n < num_nouns); every score a finite number; optionally the segment ids
    equal `narration_ids`.

    Args:
        path_or_dict: a submission .json path or the loaded dict.
        num_verbs, num_nouns: vocabulary sizes (EK100: 97, 300).
        num_actions: action scores required per segment (EK100: 100).
        narration_ids: if given, the segments that must be present (no more, no fewer).
        max_problems: stop after this many problems (a final line says so).
    """
    problems: List[str] = []
    if isinstance(path_or_dict, Mapping):
        sub = path_or_dict
    else:
        try:
            with open(path_or_dict, encoding="utf8") as f:
                sub = json.load(f)
        except (OSError, ValueError) as e:
            return [f"{path_or_dict}: cannot read JSON ({e})"]
        if not isinstance(sub, Mapping):
            return [f"{path_or_dict}: the top level must be a JSON object"]

    def add(msg: str) -> bool:
        """Record a problem; True once the limit is reached (later problems are dropped)."""
        if len(problems) < max_problems:
            problems.append(msg)
            if len(problems) == max_problems:
                problems.append(f"... stopped after {max_problems} problems")
        return len(problems) >= max_problems

    if sub.get("version") != VERSION:
        add(f"'version' must be '{VERSION}', got {sub.get('version')!r}")
    if sub.get("challenge") != CHALLENGE:
        add(f"'challenge' must be '{CHALLENGE}', got {sub.get('challenge')!r}")
    for key in SLS_KEYS:
        v = sub.get(key)
        if not (isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 5):
            add(f"'{key}' must be an integer 0-5, got {v!r}")
    results = sub.get("results")
    if not isinstance(results, Mapping):
        add(f"'results' must be an object keyed by narration_id, got {type(results).__name__}")
        return problems
    if narration_ids is not None:
        expected, got = {str(x) for x in narration_ids}, set(results)
        missing, unexpected = sorted(expected - got), sorted(got - expected)
        if missing:
            add(f"{len(missing)} narration ids missing from 'results', e.g. {missing[:5]}")
        if unexpected:
            add(f"{len(unexpected)} unexpected narration ids in 'results', e.g. {unexpected[:5]}")
    for nid, entry in results.items():
        if len(problems) >= max_problems:
            break
        if not isinstance(entry, Mapping):
            if add(f"results['{nid}'] must be an object with 'verb', 'noun' and 'action'"):
                break
            continue
        for task, count in (("verb", num_verbs), ("noun", num_nouns)):
            scores = entry.get(task)
            if not isinstance(scores, Mapping):
                add(f"results['{nid}']: missing '{task}' scores")
                continue
            bad_keys = [k for k in scores if not _CLASS_KEY.match(str(k))]
            if bad_keys:
                add(f"results['{nid}']['{task}']: keys must be class ids like '0', got {bad_keys[:3]}")
                continue
            keys = {int(k) for k in scores}
            missing_c = sorted(set(range(count)) - keys)
            extra_c = sorted(keys - set(range(count)))
            if missing_c:
                add(f"results['{nid}']['{task}']: {len(missing_c)} {task} classes missing, e.g. {missing_c[:5]}")
            if extra_c:
                add(f"results['{nid}']['{task}']: classes outside [0, {count}): {extra_c[:5]}")
            bad = [k for k, s in scores.items() if not _is_score(s)]
            if bad:
                add(f"results['{nid}']['{task}']: non-numeric or non-finite score for classes {bad[:3]}")
        acts = entry.get("action")
        if not isinstance(acts, Mapping):
            add(f"results['{nid}']: missing 'action' scores (exactly {num_actions} 'verb,noun' entries)")
            continue
        if len(acts) != num_actions:
            add(f"results['{nid}']['action']: {len(acts)} action scores, exactly {num_actions} required")
        for key, s in acts.items():
            m = _ACTION_KEY.match(str(key))
            if not m:
                add(f"results['{nid}']['action']: key {key!r} is not a 'verb,noun' pair of class ids")
                break
            if int(m.group(1)) >= num_verbs or int(m.group(2)) >= num_nouns:
                add(f"results['{nid}']['action']: key '{key}' outside [0, {num_verbs}) x [0, {num_nouns})")
                break
            if not _is_score(s):
                add(f"results['{nid}']['action']['{key}']: score {s!r} is not a finite number")
                break
    return problems


def assert_valid_ek100(path_or_dict: Union[str, Path, Mapping[str, Any]], num_verbs: int, num_nouns: int,
                       num_actions: int = NUM_ACTION_SCORES, narration_ids: Optional[Sequence[str]] = None,
                       show: int = 5) -> None:
    """Raise ValueError listing the first `show` problems if the submission is not valid (see `validate_ek100_json`)."""
    problems = validate_ek100_json(path_or_dict, num_verbs, num_nouns, num_actions, narration_ids)
    if problems:
        where = "" if isinstance(path_or_dict, Mapping) else f"{path_or_dict}: "
        raise ValueError(f"{where}invalid EK100 anticipation submission ({len(problems)} problem(s)): "
                         + "; ".join(problems[:show]))
