"""The fusion benchmark: variants × depth-noise levels × seeds on the synthetic RGB-D data, with collapse diagnostics.

One concept per module:

| module | what |
|---|---|
| `variants` | named variants (config overrides per fuser / regulariser / modality set) and presets |
| `records` | the grid's cells (`Run`) and runs.csv: columns, reading, appending, a row from a run's metrics |
| `runner` | `run_grid`: datasets, training, testing, one CSV row per run, resumable |
| `stats` | mean ± std over seeds, paired differences and verdicts (`compare`, `rtf_verdict`, `erank_verdict`) |
| `plots` | the PNGs, from runs.csv |
| `results` | results.md, from runs.csv and grid.json (`write_results`, `results_page`) |
| `pages` | README and docs pages that quote result files: markers re-rendered from the files (`render_page`) |

`tools/benchmark.py` is the command-line front end; `tools/render_docs.py` re-renders the pages.
"""
from .records import (COLUMNS, LABELS, LEARNED_AT, Run, append_row, noise_tag, num, num_list,  # noqa: F401
                      read_rows, row_from_metrics, row_key, val_history)
from .results import fmt_stat, results_markdown, results_page, write_results  # noqa: F401
from .runner import (check_grid_file, dataset_root, features_root, grid_runs, run_config, run_dir,  # noqa: F401
                     run_grid)
from .stats import (Comparison, Stat, Verdict, aggregate, compare, erank_verdict, mean_curve, mean_std,  # noqa: F401
                    noises_in, rtf_verdict, variants_in)
from .variants import (ERANK_REFERENCES, FROZEN_OVERRIDES, PRESETS, RTF_VARIANTS, VARIANTS, GridSpec,  # noqa: F401
                       is_baseline, variant_overrides)
