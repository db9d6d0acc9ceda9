"""YAML configs with dotted command-line overrides, checked against one set of documented defaults.

Every key has exactly one home: `r3d/defaults.yaml`, where it has a default and a one-line comment. An experiment
config (e.g. `configs/synthetic.yaml`) is a small YAML that overrides some of those keys; `key=value` arguments on the
command line override both. A key that is not in the defaults is an error that names it (and suggests the closest
known key); a value of the wrong type is an error that names the key and both types. A mapping whose default is `{}`
is free-form (used for plugin arguments).
"""
from __future__ import annotations

import copy
import difflib
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

import yaml

DEFAULTS_PATH = Path(__file__).with_name("defaults.yaml")


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the fix."""


class Config(dict):
    """A nested dict with attribute access: `cfg.model.fuser` is `cfg["model"]["fuser"]`."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key '{name}'") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __deepcopy__(self, memo: dict) -> "Config":
        return Config({k: copy.deepcopy(v, memo) for k, v in self.items()})

    def get_path(self, dotted: str) -> Any:
        node: Any = self
        for part in dotted.split("."):
            node = node[part]
        return node

    def to_dict(self) -> Dict[str, Any]:
        return _to_plain(self)


def _to_config(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return Config({k: _to_config(v) for k, v in obj.items()})
    if isinstance(obj, list):
        return [_to_config(v) for v in obj]
    return obj


def _to_plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


def load_defaults() -> Config:
    with open(DEFAULTS_PATH) as f:
        return _to_config(yaml.safe_load(f))


def _check_type(key: str, default: Any, value: Any, where: str) -> Any:
    """Return `value` coerced to the type of `default`, or raise a ConfigError naming `key`."""
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif isinstance(default, str):
        if isinstance(value, str):
            return value
    elif isinstance(default, list):
        if isinstance(value, (list, tuple)):
            return list(value)
    elif isinstance(default, Mapping):
        if isinstance(value, Mapping):
            return value
    else:
        return value
    raise ConfigError(
        f"{where}: key '{key}' expects {type(default).__name__} (default {default!r}), got "
        f"{type(value).__name__} {value!r}"
    )


def _merge(base: Config, update: Mapping, where: str, prefix: str = "") -> None:
    for k, v in update.items():
        key = f"{prefix}{k}"
        if k not in base:
            close = difflib.get_close_matches(k, list(base.keys()), n=1)
            hint = f" Did you mean '{prefix}{close[0]}'?" if close else ""
            raise ConfigError(f"{where}: unknown config key '{key}'.{hint} Known keys are listed in {DEFAULTS_PATH}.")
        default = base[k]
        if isinstance(default, Mapping) and len(default) > 0:
            if not isinstance(v, Mapping):
                raise ConfigError(f"{where}: key '{key}' is a section; set its sub-keys (e.g. {key}.<name>=...)")
            _merge(default, v, where, prefix=f"{key}.")
        else:
            base[k] = _to_config(_check_type(key, default, v, where))


def parse_override(item: str) -> Dict[str, Any]:
    """Turn `a.b.c=value` into `{"a": {"b": {"c": value}}}`; the value is parsed as YAML (`3`, `0.1`, `[rgb]`)."""
    if "=" not in item:
        raise ConfigError(f"override '{item}' is not of the form key=value (e.g. model.fuser=concat)")
    key, raw = item.split("=", 1)
    key = key.strip().lstrip("-")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError as e:
        raise ConfigError(f"override '{item}': value is not valid YAML: {e}") from None
    if isinstance(value, str) and raw.strip().lower() in ("none", "null"):
        value = None
    out: Dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


def load_config(path: Optional[Union[str, os.PathLike]] = None, overrides: Iterable[str] = ()) -> Config:
    """Defaults ← YAML file at `path` (optional) ← `key=value` overrides. Returns a validated `Config`."""
    cfg = load_defaults()
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        with open(p) as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(data, Mapping):
            raise ConfigError(f"{p}: the top level must be a mapping of keys")
        _merge(cfg, data, str(p))
    for item in overrides:
        _merge(cfg, parse_override(item), f"override '{item}'")
    return cfg


def apply_overrides(cfg: Config, overrides: Iterable[str]) -> Config:
    """Return a copy of `cfg` with `key=value` overrides applied (checked like any override)."""
    out = copy.deepcopy(cfg)
    for item in overrides:
        _merge(out, parse_override(item), f"override '{item}'")
    return out


def merge_into(cfg: Config, update: Mapping, where: str = "update") -> Config:
    """Return a copy of `cfg` with `update` (a nested mapping) merged in, checked like a config file."""
    out = copy.deepcopy(cfg)
    _merge(out, update, where)
    return out


def save_config(cfg: Config, path: Union[str, os.PathLike]) -> None:
    """Write the resolved config as YAML (the run folder's `config.yaml`)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_suffix(p.suffix + ".tmp")
    with open(tmp, "w") as f:
        yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
    os.replace(tmp, p)


def config_from_dict(data: Mapping) -> Config:
    """Rebuild a Config from a plain dict (e.g. one stored in a checkpoint), validated against the defaults."""
    cfg = load_defaults()
    _merge(cfg, data, "stored config")
    return cfg


def flatten(cfg: Mapping, prefix: str = "") -> Dict[str, Any]:
    """`{"a": {"b": 1}}` → `{"a.b": 1}` (for logging hyper-parameters)."""
    out: Dict[str, Any] = {}
    for k, v in cfg.items():
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


__all__: List[str] = [
    "Config",
    "ConfigError",
    "load_config",
    "load_defaults",
    "merge_into",
    "apply_overrides",
    "import_custom_modules_from",
    "parse_override",
    "save_config",
    "config_from_dict",
    "flatten",
]


def import_custom_modules_from(cfg: Mapping) -> None:
    """Import the modules listed in the config key `custom_imports` (user plugins register themselves on import)."""
    from .registry import import_custom_modules

    import_custom_modules(cfg.get("custom_imports") or [])
