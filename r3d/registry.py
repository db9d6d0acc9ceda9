"""Name → builder registries for every pluggable component of r3d.

One `Registry` per kind (backbones, fusers, heads, regularisers, datasets, anticipation protocols). A component registers itself with a
decorator, and is then built by name from the config::

    from r3d.registry import FUSERS

    @FUSERS.register("myfuser")
    class MyFuser(nn.Module):
        '''One-line description shown by `python -m r3d list`.'''

Components are found three ways: the built-ins (imported by `r3d.models` / `r3d.data`), modules
named in the config key `custom_imports` (imported by `import_custom_modules` before anything is built), and Python
entry points in the group ``r3d.plugins`` (loaded lazily, once, on the first lookup that misses or on `list`). A name
registered twice is an error that names both sources.
"""
from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional

_logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "r3d.plugins"
_entry_points_loaded = False


class NameClashError(KeyError):
    """Two components were registered under one name; the message names both sources."""


@dataclass(frozen=True)
class Entry:
    """A registered component: its builder and where it came from."""

    name: str
    obj: Callable[..., Any]
    source: str  # "module.qualname" of the builder, or the plugin's entry point

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.obj) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""


class Registry:
    """A named table of builders (classes or functions) of one kind of component."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, Entry] = {}

    def register(self, name: Optional[str] = None, *, source: Optional[str] = None) -> Callable:
        """Decorator: register the decorated class/function under `name` (default: its `__name__`)."""

        def deco(obj: Callable) -> Callable:
            key = name or obj.__name__
            src = source or f"{obj.__module__}.{getattr(obj, '__qualname__', obj.__name__)}"
            old = self._entries.get(key)
            if old is not None and old.obj is not obj:
                raise NameClashError(
                    f"{self.kind} '{key}' is registered twice: by {old.source} and by {src}. "
                    f"Rename one of them (the registry name is the string passed to @{self.kind.upper()}.register)."
                )
            self._entries[key] = Entry(key, obj, src)
            return obj

        return deco

    def get(self, name: str) -> Callable[..., Any]:
        """Return the builder registered as `name`; load entry-point plugins once if it is not known yet."""
        if name not in self._entries:
            load_entry_point_plugins()
        if name not in self._entries:
            known = ", ".join(sorted(self._entries)) or "(none)"
            raise KeyError(
                f"unknown {self.kind} '{name}'. Registered: {known}. A plugin must be installed (entry point group "
                f"'{ENTRY_POINT_GROUP}') or listed in the config key custom_imports."
            )
        return self._entries[name].obj

    def build(self, name: str, /, *args: Any, **kwargs: Any) -> Any:
        """Build component `name` with the given arguments; a bad keyword names the component and the key."""
        builder = self.get(name)
        try:
            inspect.signature(builder).bind_partial(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{self.kind} '{name}': {e} (check the config section that configures it)") from None
        return builder(*args, **kwargs)

    def entries(self) -> List[Entry]:
        load_entry_point_plugins()
        return [self._entries[k] for k in sorted(self._entries)]

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def names(self) -> List[str]:
        return sorted(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind}: {', '.join(self.names())})"


BACKBONES = Registry("backbone")
FUSERS = Registry("fuser")
HEADS = Registry("head")
REGULARIZERS = Registry("regularizer")
DATASETS = Registry("dataset")
PROTOCOLS = Registry("protocol")
WEIGHTS = Registry("weights")  # named sources of pretrained backbone weights (r3d.models.backbones.weights)

ALL_REGISTRIES = (BACKBONES, FUSERS, HEADS, REGULARIZERS, DATASETS, PROTOCOLS, WEIGHTS)


def import_custom_modules(modules: Iterable[str]) -> None:
    """Import user modules named in the config key `custom_imports` so that their decorators register them."""
    for mod in modules or []:
        try:
            importlib.import_module(mod)
        except ImportError as e:
            raise ImportError(f"custom_imports: cannot import '{mod}': {e}. Is the package installed?") from e


def load_entry_point_plugins(force: bool = False) -> None:
    """Import every module advertised in the entry-point group ``r3d.plugins`` (once per process)."""
    global _entry_points_loaded
    if _entry_points_loaded and not force:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        before = [set(reg._entries) for reg in ALL_REGISTRIES]
        try:
            ep.load()
        except NameClashError:
            raise
        except Exception as e:  # a broken plugin must not hide the built-ins; say which one and why
            _logger.warning("r3d plugin entry point '%s' (%s) failed to load: %s", ep.name, ep.value, e)
        dist = getattr(getattr(ep, "dist", None), "name", None) or "?"
        for reg, old in zip(ALL_REGISTRIES, before):  # say which distribution brought each new component
            for key in set(reg._entries) - old:
                entry = reg._entries[key]
                reg._entries[key] = Entry(key, entry.obj, f"{entry.source} (entry point '{ep.name}' of {dist})")
