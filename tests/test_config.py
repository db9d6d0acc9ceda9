"""Config loading: defaults, files, dotted overrides, and errors that name the key."""
import pytest
import yaml

from r3d.config import ConfigError, apply_overrides, config_from_dict, load_config, load_defaults, save_config


def test_every_default_key_has_a_comment():
    """Each key line of defaults.yaml carries a one-line `#` comment (the key's documentation)."""
    from r3d.config import DEFAULTS_PATH

    undocumented = []
    for line in DEFAULTS_PATH.read_text().splitlines():
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        key, _, rest = s.partition(":")
        if rest.strip() == "":  # a section header
            continue
        if "#" not in rest:
            undocumented.append(key)
    assert undocumented == []


def test_overrides_are_typed_and_nested():
    cfg = load_config(None, ["model.fuser=concat", "train.lr=1e-3", "model.modalities=[rgb]", "data.tau_a=2"])
    assert cfg.model.fuser == "concat"
    assert cfg.train.lr == pytest.approx(1e-3) and isinstance(cfg.train.lr, float)
    assert cfg.model.modalities == ["rgb"]
    assert cfg.data.tau_a == 2.0 and isinstance(cfg.data.tau_a, float)
    assert cfg.data.missing_rate.depth == 0.0  # untouched keys keep their defaults


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"unknown config key 'model\.fusr'.*model\.fuser"):
        load_config(None, ["model.fusr=concat"])


def test_wrong_type_is_an_error_naming_key_and_types():
    with pytest.raises(ConfigError, match=r"'train\.epochs' expects int .* got float 1\.5"):
        load_config(None, ["train.epochs=1.5"])
    with pytest.raises(ConfigError, match="is a section"):
        load_config(None, ["model.rtf=3"])


def test_file_then_overrides(tmp_path):
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump({"model": {"fuser": "sum", "rtf": {"ratio": 0.2}}, "train": {"epochs": 3}}))
    cfg = load_config(p, ["train.epochs=7"])
    assert (cfg.model.fuser, cfg.model.rtf.ratio, cfg.train.epochs) == ("sum", 0.2, 7)
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  fuserr: sum\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: unknown config key 'model\.fuserr'"):
        load_config(bad)


def test_free_form_section_and_round_trip(tmp_path):
    cfg = load_config(None, ["model.fuser_args={gain: 2.0}"])
    assert cfg.model.fuser_args == {"gain": 2.0}
    save_config(cfg, tmp_path / "c.yaml")
    again = config_from_dict(yaml.safe_load((tmp_path / "c.yaml").read_text()))
    assert again == cfg
    assert apply_overrides(again, ["seed=3"]).seed == 3 and again.seed == load_defaults().seed
