"""Dataset adapters, one per file; importing this package registers every built-in one in `r3d.registry.DATASETS`.

| `data.format` | file | reads |
|---|---|---|
| ``folder`` | folder.py | r3d's own layout: videos/, depth/, annotations/ (EK100 columns), dataset.yaml |
| ``ek100`` | ek100.py | EPIC-KITCHENS-100 official EPIC_100_*.csv (or .pkl), videos / rgb_frames as downloaded |
| ``rulstm`` | rulstm.py | RULSTM's headerless frame-number CSVs (30 fps) and actions.csv |
| ``ntu`` | ntu.py | NTU RGB+D 60/120: sample names, xsub/xview/xset splits, avi RGB, masked depth PNGs |
| ``utkinect`` | utkinect.py | UTKinect-Action3D: actionLabel.txt, jpg frame folders, OpenCV XML depth |

An adapter is a builder ``(root, cfg=None) -> DatasetInfo`` (`r3d.data.info`; a subclass where the layout differs)
whose segments are the same `Segment` records as the folder format's, so the datasets and the protocols never see
the difference. `r3d.data.formats.build_info` imports this package, calls the adapter `data.format` names and then
resolves the depth settings, so an adapter does not read them.
"""
from . import ek100, folder, ntu, rulstm, utkinect  # noqa: F401
