"""EPIC-KITCHENS-100-style annotation CSVs: class lists, action segments and the action vocabulary, checked strictly.

A header row is required; column order is free and extra columns are ignored. Every problem raises
a `DataError` that names the file, the CSV line number (the header is line 1) and the column, and says what to fix.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from .errors import DataError, where

PathLike = Union[str, os.PathLike]

SEGMENT_COLUMNS = ("narration_id", "video_id", "start_timestamp", "stop_timestamp")
LABEL_COLUMNS = ("verb_class", "noun_class")

_TIMESTAMP = re.compile(r"^(?:(\d+):)?(\d+):(\d+(?:\.\d*)?)$")


def parse_timestamp(text: str) -> float:
    """``"HH:MM:SS.ss"`` (or ``"MM:SS.ss"``, or plain seconds ``"12.5"``) -> seconds as float.

    Raises ValueError for anything else (including NaN/inf); negative plain seconds are returned as they are (the
    segment checks reject them with the row number).
    """
    s = str(text).strip()
    m = _TIMESTAMP.match(s)
    if m:
        hours, minutes, seconds = m.groups()
        if (hours is not None and int(minutes) >= 60) or float(seconds) >= 60:
            raise ValueError(f"timestamp '{text}' has minutes or seconds >= 60")
        return int(hours or 0) * 3600.0 + int(minutes) * 60.0 + float(seconds)
    try:
        value = float(s)
    except ValueError:
        raise ValueError(f"'{text}' is not a timestamp (HH:MM:SS.ss) or a number of seconds") from None
    if not math.isfinite(value):
        raise ValueError(f"'{text}' is not a finite time")
    return value


@dataclass(frozen=True)
class Segment:
    """One annotated action segment (times in seconds from the video start; class ids -1 when absent)."""

    narration_id: str
    video_id: str
    start: float
    stop: float
    verb: int = -1
    noun: int = -1
    participant_id: str = ""
    row: int = 0  # CSV line number (header = 1), for error messages
    source: str = ""  # the CSV it came from, for error messages

    @property
    def where(self) -> str:
        """``file:line`` of the annotation row."""
        return where(self.source or "<annotations>", self.row)


def iter_rows(path: PathLike, required: Sequence[str],
              problems: Optional[List[DataError]] = None) -> Iterator[Tuple[int, Dict[str, str]]]:
    """(line number, {column: value}) of each non-empty data row; checks the file and the header first. A row with
    the wrong number of fields raises, or (with a `problems` list) is appended to it as a DataError and skipped."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: annotation file not found; annotations/ holds <split>.csv, verb_classes.csv and "
                        f"noun_classes.csv (r3d/data/adapters/folder.py)")
    with open(p, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{p}: the file is empty; it needs a header row ({', '.join(required)}, ...) and rows")
        header = [h.strip() for h in header]
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(f"{where(p, 1)}: missing required column(s) {missing} in the header {header}; add them "
                            f"(column order is free, extra columns are ignored)")
        dup = sorted({h for h in header if h and header.count(h) > 1})
        if dup:
            raise DataError(f"{where(p, 1)}: column(s) {dup} appear more than once in the header; keep one of each")
        for values in reader:
            line = reader.line_num
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(header):
                bad = DataError(f"{where(p, line)}: {len(values)} fields but the header has {len(header)}; "
                                f"quote fields that contain commas")
                if problems is None:
                    raise bad
                problems.append(bad)
                continue
            yield line, {h: v.strip() for h, v in zip(header, values)}


def int_field(p: Path, line: int, row: Dict[str, str], column: str, num: Optional[int], required: bool) -> int:
    """A class id cell checked against 0..num-1; an absent/empty cell (or -1) is -1 when not `required`."""
    text = row.get(column, "")
    if text == "" and not required:
        return -1
    try:
        value = int(text)
    except ValueError:
        hint = f" (0..{num - 1})" if num else ""
        raise DataError(f"{where(p, line, column)} is '{text}', not an integer; write the class id{hint}") from None
    if value == -1 and not required:
        return -1
    if value < 0 or (num is not None and value >= num):
        known = f"ids 0..{num - 1}" if num is not None else "non-negative ids"
        raise DataError(f"{where(p, line, column)}: class id {value} is unknown (the class list has {known}); fix "
                        f"the id or add the class to the class CSV")
    return value


def read_classes(path: PathLike) -> List[str]:
    """Class names from an ``id,key`` CSV (extra columns allowed), ordered by id; ids must be exactly 0..n-1."""
    p = Path(path)
    by_id: Dict[int, Tuple[str, int]] = {}
    for line, row in iter_rows(p, ("id", "key")):
        try:
            cid = int(row["id"])
        except ValueError:
            raise DataError(f"{where(p, line, 'id')} is '{row['id']}', not an integer; class ids are 0..n-1") from None
        if cid in by_id:
            raise DataError(f"{where(p, line, 'id')}: id {cid} already used on line {by_id[cid][1]}; ids must be "
                            f"unique")
        by_id[cid] = (row["key"], line)
    if not by_id:
        raise DataError(f"{p}: no classes; add one `id,key` row per class")
    expected = set(range(len(by_id)))
    if set(by_id) != expected:
        bad = sorted(set(by_id) - expected)[0]
        raise DataError(f"{where(p, by_id[bad][1], 'id')}: id {bad} breaks the numbering; the {len(by_id)} ids must "
                        f"be 0..{len(by_id) - 1} (missing: {sorted(expected - set(by_id))[:5]})")
    return [by_id[i][0] for i in range(len(by_id))]


def read_segments(path: PathLike, num_verbs: Optional[int] = None, num_nouns: Optional[int] = None,
                  require_labels: bool = True, rows: Optional[Iterable[Tuple[int, Dict[str, str]]]] = None,
                  problems: Optional[List[DataError]] = None) -> List[Segment]:
    """Action segments of one split, in file order.

    Args:
        path: the split CSV (EK100 columns: narration_id, video_id, start/stop_timestamp, verb/noun_class, ...).
        num_verbs / num_nouns: class counts; ids outside 0..n-1 are errors (None: only non-negative is checked).
        require_labels: verb_class/noun_class must be present and filled (train/val). When False (e.g. test),
            absent columns or empty cells give -1, while filled cells are still checked.
        rows: (row number, {column: text}) pairs read by the caller from another container (e.g. EK100's .pkl
            twins, `r3d.data.adapters.ek100`), checked like CSV rows; `path` then only names them in errors and the
            caller has checked the columns. None: read the CSV at `path`.
        problems: None: the first bad row raises. A list: each bad row's DataError is appended to it and the row is
            dropped (the validator reads this way, so one bad row does not hide the rest of its split); problems of
            the whole file (missing, no header, a missing column) still raise.
    Raises DataError (file:line: column ...) for a missing column, a non-numeric or unknown class id, a bad
    timestamp, a negative start, a stop before its start, a duplicate narration_id, or a split without rows.
    """
    p = Path(path)
    required = SEGMENT_COLUMNS + (LABEL_COLUMNS if require_labels else ())
    out: List[Segment] = []
    seen: Dict[str, int] = {}
    for line, row in (rows if rows is not None else iter_rows(p, required, problems)):
        try:
            out.append(_segment(p, line, row, num_verbs, num_nouns, require_labels, seen))
        except DataError as e:
            if problems is None:
                raise
            problems.append(e)
    if not out and not problems:
        raise DataError(f"{p}: the split has no segments (only a header); add rows or point the config at another "
                        f"split (data.train_split / data.val_split)")
    return out


def _segment(p: Path, line: int, row: Dict[str, str], num_verbs: Optional[int], num_nouns: Optional[int],
             require_labels: bool, seen: Dict[str, int]) -> Segment:
    """One checked row of a split (`read_segments`); `seen` maps narration ids to their line."""
    nid, vid = row["narration_id"], row["video_id"]
    for col in ("narration_id", "video_id"):
        if not row[col]:
            raise DataError(f"{where(p, line, col)} is empty; every segment needs a {col}")
    if nid in seen:
        raise DataError(f"{where(p, line, 'narration_id')}: '{nid}' is a duplicate of line {seen[nid]}; "
                        f"narration ids must be unique")
    seen[nid] = line
    times = []
    for col in ("start_timestamp", "stop_timestamp"):
        try:
            times.append(parse_timestamp(row[col]))
        except ValueError as e:
            raise DataError(f"{where(p, line, col)}: {e}; write HH:MM:SS.ss") from None
    start, stop = times
    if start < 0:
        raise DataError(f"{where(p, line, 'start_timestamp')}: start {start:g} s is negative; times are seconds "
                        f"from the video start")
    if stop < start:
        raise DataError(f"{where(p, line, 'stop_timestamp')}: stop {row['stop_timestamp']} is before start "
                        f"{row['start_timestamp']}; swap or fix them")
    verb = int_field(p, line, row, "verb_class", num_verbs, require_labels)
    noun = int_field(p, line, row, "noun_class", num_nouns, require_labels)
    return Segment(nid, vid, start, stop, verb, noun, row.get("participant_id", ""), line, str(p))


# -- the action vocabulary ---------------------------------------------------------------------------------------------
def read_actions(path: PathLike, num_verbs: int, num_nouns: int) -> List[Tuple[int, int]]:
    """The action vocabulary from ``annotations/actions.csv`` (id,verb,noun; ids 0..n-1, distinct pairs)."""
    p = Path(path)
    by_id: Dict[int, Tuple[int, int]] = {}
    lines: Dict[Tuple[int, int], int] = {}
    for line, row in iter_rows(p, ("id", "verb", "noun")):
        try:
            aid = int(row["id"])
        except ValueError:
            raise DataError(f"{where(p, line, 'id')} is '{row['id']}', not an integer; action ids are 0..n-1") from None
        pair = (int_field(p, line, row, "verb", num_verbs, True), int_field(p, line, row, "noun", num_nouns, True))
        if aid in by_id:
            raise DataError(f"{where(p, line, 'id')}: action id {aid} is used twice; ids must be unique")
        if pair in lines:
            raise DataError(f"{where(p, line)}: pair (verb {pair[0]}, noun {pair[1]}) repeats line {lines[pair]}; "
                            f"each action is one distinct pair")
        by_id[aid], lines[pair] = pair, line
    if sorted(by_id) != list(range(len(by_id))):
        raise DataError(f"{p}: action ids must be 0..{len(by_id) - 1} without gaps; renumber them")
    if not by_id:
        raise DataError(f"{p}: no actions; add `id,verb,noun` rows or delete the file to use the pairs of train.csv")
    return [by_id[i] for i in range(len(by_id))]


def actions_from_segments(segments: List[Segment]) -> List[Tuple[int, int]]:
    """(verb, noun) pairs in order of first appearance (labelled segments only)."""
    seen: Dict[Tuple[int, int], None] = {}
    for s in segments:
        if s.verb >= 0 and s.noun >= 0:
            seen.setdefault((s.verb, s.noun), None)
    return list(seen)
