"""EPIC-KITCHENS-100 action anticipation challenge export (JSON version 0.2) of a model's predictions."""
from __future__ import annotations

import logging

import torch

from ..metrics.ek100 import assert_valid_ek100, export_ek100_json
from .evaluate import predict

_logger = logging.getLogger("r3d.export")


def export_predictions_ek100(model, loader, accelerator, data, cfg, path: str) -> None:
    """Predict every sample of `loader` and write the challenge JSON (all verb and noun scores, 100 action scores
    per segment keyed "verb,noun", the sls fields from `eval.sls`); the file is validated after writing."""
    preds = predict(model, loader, accelerator, desc="ek100 export")
    if not accelerator.is_main_process:
        return
    order = torch.argsort(preds.index)
    ids = [data.val.items[int(i)].segment.narration_id for i in preds.index[order]]
    scores = {k: torch.softmax(v[order].float(), -1) for k, v in preds.scores.items()}
    actions = torch.as_tensor(data.info.actions, dtype=torch.long).view(-1, 2)
    nv, nn = len(data.info.verb_classes), len(data.info.noun_classes)
    # The challenge asks for exactly 100 action scores; a vocabulary with fewer possible pairs (e.g. the synthetic
    # benchmark's 4 x 4) gets all of them, and the file says so by its count.
    k = min(100, nv * nn)
    if k < 100:
        _logger.warning("%d verbs x %d nouns allow only %d action scores per segment (EK100 asks for 100)", nv, nn, k)
    export_ek100_json(path, ids, scores["verb"], scores["noun"], scores["action"], actions, dict(cfg.eval.sls or {}),
                      topk_actions=k, scores_are_probabilities=True)
    assert_valid_ek100(path, nv, nn, num_actions=k)
