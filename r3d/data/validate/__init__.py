"""Up-front dataset checks: every problem the loaders would stop on (or quietly work around) later, found in one pass.

`validate_root(root, cfg)` reads a ROOT (any registered `data.format`) the way the dataset will — through the same
`DatasetInfo` methods and with the same `model.modalities` — but does not stop at the first problem: each check records
findings, a bad CSV row drops only that row, and the report prints as one table (`tools/validate_data.py ROOT`).

| check | file | what |
|---|---|---|
| layout | layout.py | ROOT/annotations exists; videos/ when the model uses RGB, depth/ when it uses depth |
| dataset.yaml | layout.py | known keys, numbers, depth_min < depth_max (with the config's depth keys) |
| classes | layout.py | verb/noun class lists (ids 0..n-1), actions.csv |
| annotations | layout.py | every split CSV: header, timestamps, class ids, stop >= start, unique narration ids |
| narration ids | root.py | a narration id used in two splits (train/val leakage) |
| videos | streams.py | each annotated video exists (unless timed by its depth), opens, its last frame decodes |
| frame timing | streams.py | frame count and fps agree with the container and every frame's timestamp |
| depth store | streams.py | depth exists for each video (missing = the modality is absent), opens, no frame missing |
| depth frames | streams.py | as many depth frames as RGB frames (unless dataset.yaml gives depth_fps) |
| depth values | streams.py | 16-bit single-channel PNGs (every header), readable frames, NaN/inf in float arrays |
| depth range | streams.py | the share of sampled readings inside depth_min..depth_max after depth_scale |
| segments | root.py | each segment starts inside its video; windows that reach before the video |

The checks reuse the readers of `r3d.data` (so the messages are the ones training would print). Findings and the
table: `report.py`.
"""
from .report import CHECKS, ERROR, INFO, WARNING, CheckResult, Finding, ValidationReport  # noqa: F401
from .root import validate_root  # noqa: F401
