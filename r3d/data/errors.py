"""The one exception type of `r3d.data`: bad input data, explained in one line.

Every `DataError` message names the file (and the CSV line and column, or the key) that caused it and says what would
fix it, e.g. ``annotations/train.csv:7: column 'verb_class' is 'cut', not an integer; write the class id (0..3)``.
"""
from __future__ import annotations

import os
from typing import Optional, Union


class DataError(ValueError):
    """A dataset file is missing, unreadable or inconsistent; the message names the file/row/key and the fix."""


def where(path: Union[str, os.PathLike], row: Optional[int] = None, column: Optional[str] = None) -> str:
    """`path`, `path:row` or `path:row: column 'c'` — the location prefix used in `DataError` messages."""
    out = str(path)
    if row is not None:
        out += f":{row}"
    if column is not None:
        out += f": column '{column}'"
    return out
