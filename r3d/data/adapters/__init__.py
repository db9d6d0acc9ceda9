"""Dataset adapters for published layouts, one per file; each registers itself in `r3d.registry.DATASETS`.

| `data.format` | file | reads |
|---|---|---|
| ``ek100`` | ek100.py | EPIC-KITCHENS-100 official EPIC_100_*.csv (or .pkl), videos / rgb_frames as downloaded |
| ``rulstm`` | rulstm.py | RULSTM's headerless frame-number CSVs (30 fps) and actions.csv |
| ``ntu`` | ntu.py | NTU RGB+D 60/120: sample names, xsub/xview/xset splits, avi RGB, masked depth PNGs |
| ``utkinect`` | utkinect.py | UTKinect-Action3D: actionLabel.txt, jpg frame folders, OpenCV XML depth |

Each returns a `r3d.data.formats.DatasetInfo` (a subclass where the layout differs) whose segments are the same
`Segment` records as the folder format's, so `AnticipationDataset` and the protocols never see the difference.
This package is imported by `r3d.data.formats`, so the names are registered whenever datasets can be built.
"""
from . import ek100, ntu, rulstm, utkinect  # noqa: F401
