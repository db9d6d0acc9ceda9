"""Metrics: anticipation accuracy (top-k, MT5R, MoC), collapse diagnostics (effective rank, mutual rank gain, pooled
rank, modality reliance) and the EPIC-KITCHENS-100 anticipation submission format."""
from .anticipation import (
    action_scores_from_verb_noun,
    anticipation_metrics,
    ek100_tail_subsets,
    mean_over_classes_accuracy,
    mean_topk_recall,
    moc_at_betas,
    tail_classes,
    topk_accuracy,
)
from .collapse import (
    CollapseAccumulator,
    effective_rank,
    erank_vs_observed,
    mean_effective_rank,
    modality_reliance,
    mutual_rank_gain,
    numerical_rank,
    observed_length,
    pooled_effective_rank,
)
from .ek100 import assert_valid_ek100, export_ek100_json, top_action_entries, validate_ek100_json

__all__ = [
    "topk_accuracy", "mean_topk_recall", "anticipation_metrics", "action_scores_from_verb_noun", "tail_classes",
    "ek100_tail_subsets", "mean_over_classes_accuracy", "moc_at_betas",
    "effective_rank", "mean_effective_rank", "numerical_rank", "pooled_effective_rank", "mutual_rank_gain",
    "modality_reliance", "erank_vs_observed", "observed_length", "CollapseAccumulator",
    "export_ek100_json", "validate_ek100_json", "assert_valid_ek100", "top_action_entries",
]
