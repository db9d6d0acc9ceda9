"""The plugin API: `custom_imports`, entry points in the group `r3d.plugins` (real dist-info folders on sys.path, loaded
lazily and once), name clashes that name both sources, `python -m r3d list`, and the worked example
`examples/plugin_fuser` (a GMU-style gated fuser)."""
import importlib.metadata
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from r3d import registry
from r3d.config import load_config, import_custom_modules_from
from r3d.registry import ALL_REGISTRIES, FUSERS, load_entry_point_plugins

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "plugin_fuser"
TEST_PREFIXES = ("r3d_test_plugin", "r3d_plugin_example")

PLUGIN_SRC = '''
import torch.nn as nn
from r3d.registry import FUSERS

@FUSERS.register("{name}")
class {cls}(nn.Module):
    """{doc}"""
'''


@pytest.fixture
def isolated(monkeypatch):
    """Registries, the entry-point flag and plugin modules are restored after the test."""
    for reg in ALL_REGISTRIES:  # plugin entries an earlier test loaded go too: their modules are re-imported here
        monkeypatch.setattr(reg, "_entries", {k: e for k, e in reg._entries.items()
                                              if not getattr(e.obj, "__module__", "").startswith(TEST_PREFIXES)})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    for name in [n for n in sys.modules if n.startswith(TEST_PREFIXES)]:
        monkeypatch.delitem(sys.modules, name)
    yield monkeypatch
    for name in [n for n in sys.modules if n.startswith(TEST_PREFIXES)]:
        del sys.modules[name]


def _write_module(root: Path, module: str, name: str, cls: str = "PluginFuser", doc: str = "A test fuser.") -> None:
    (root / f"{module}.py").write_text(PLUGIN_SRC.format(name=name, cls=cls, doc=doc))


def _write_dist(root: Path, dist: str, entries: dict) -> None:
    """A minimal installed distribution: NAME-VERSION.dist-info with METADATA and entry_points.txt."""
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entries.items())
    (info / "entry_points.txt").write_text(f"[{registry.ENTRY_POINT_GROUP}]\n{lines}")


def _count_entry_point_scans(monkeypatch) -> list:
    calls = []
    real = importlib.metadata.entry_points

    def counting(*args, **kwargs):
        calls.append(kwargs.get("group"))
        return real(*args, **kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", counting)
    return calls


# -- custom_imports ---------------------------------------------------------------------------------------------------
def test_custom_imports_registers_a_users_module(isolated, tmp_path):
    _write_module(tmp_path, "r3d_test_plugin_ci", "ci_fuser", cls="CiFuser")
    isolated.syspath_prepend(str(tmp_path))
    cfg = load_config(None, ["custom_imports=[r3d_test_plugin_ci]"])
    assert "ci_fuser" not in FUSERS
    import_custom_modules_from(cfg)
    assert FUSERS.get("ci_fuser").__name__ == "CiFuser"
    assert [e.source for e in FUSERS.entries() if e.name == "ci_fuser"] == ["r3d_test_plugin_ci.CiFuser"]


def test_custom_imports_missing_module_names_the_key(isolated):
    with pytest.raises(ImportError, match="custom_imports: cannot import 'r3d_test_plugin_nowhere'"):
        import_custom_modules_from({"custom_imports": ["r3d_test_plugin_nowhere"]})


# -- entry points -----------------------------------------------------------------------------------------------------
def test_entry_point_plugin_is_loaded_lazily_and_once(isolated, tmp_path):
    _write_module(tmp_path, "r3d_test_plugin_ep", "ep_fuser", cls="EpFuser", doc="Entry-point fuser.\n\nMore text.")
    _write_dist(tmp_path, "r3d-test-plugin-ep", {"ep": "r3d_test_plugin_ep"})
    isolated.syspath_prepend(str(tmp_path))
    scans = _count_entry_point_scans(isolated)

    FUSERS.register("already_known")(type("Known", (), {}))
    FUSERS.get("already_known")  # a hit does not load plugins
    assert scans == [] and "r3d_test_plugin_ep" not in sys.modules

    assert FUSERS.get("ep_fuser").__name__ == "EpFuser"  # the first miss loads every plugin
    assert scans == [registry.ENTRY_POINT_GROUP] and "r3d_test_plugin_ep" in sys.modules
    with pytest.raises(KeyError, match="unknown fuser 'nope'.*r3d.plugins"):
        FUSERS.get("nope")
    FUSERS.entries()
    load_entry_point_plugins()
    assert len(scans) == 1  # once per process
    (entry,) = [e for e in FUSERS.entries() if e.name == "ep_fuser"]
    assert entry.source == "r3d_test_plugin_ep.EpFuser (entry point 'ep' of r3d-test-plugin-ep)"
    assert entry.summary == "Entry-point fuser."


def test_broken_plugin_is_reported_and_does_not_hide_others(isolated, tmp_path, caplog):
    (tmp_path / "r3d_test_plugin_broken.py").write_text("raise RuntimeError('boom at import')\n")
    (tmp_path / "r3d_test_plugin_keyerr.py").write_text("{}['missing']\n")  # a plugin's own bug, not a clash
    _write_module(tmp_path, "r3d_test_plugin_fine", "fine_fuser")
    _write_dist(tmp_path, "r3d-test-plugin-three",
                {"broken": "r3d_test_plugin_broken", "keyerr": "r3d_test_plugin_keyerr", "fine": "r3d_test_plugin_fine"})
    isolated.syspath_prepend(str(tmp_path))
    with caplog.at_level(logging.WARNING, logger="r3d.registry"):
        assert FUSERS.get("fine_fuser").__name__ == "PluginFuser"
    assert "'broken' (r3d_test_plugin_broken) failed to load: boom at import" in caplog.text
    assert "'keyerr' (r3d_test_plugin_keyerr) failed to load: 'missing'" in caplog.text


def test_name_clash_names_both_sources(isolated, tmp_path):
    FUSERS.register("taken")(type("First", (), {"__module__": "mypkg.first"}))
    _write_module(tmp_path, "r3d_test_plugin_clash", "taken", cls="Second")
    _write_dist(tmp_path, "r3d-test-plugin-clash", {"clash": "r3d_test_plugin_clash"})
    isolated.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyError, match=r"fuser 'taken' is registered twice: by mypkg\.first\.First and by "
                                       r"r3d_test_plugin_clash\.Second"):
        FUSERS.get("something_else")  # the miss loads the plugin, whose import clashes
    # the same clash through custom_imports
    sys.modules.pop("r3d_test_plugin_clash", None)
    with pytest.raises(KeyError, match="registered twice"):
        import_custom_modules_from({"custom_imports": ["r3d_test_plugin_clash"]})
    # registering the same object again (e.g. a module imported by both routes) is not a clash
    first = FUSERS.get("taken")
    FUSERS.register("taken")(first)


# -- python -m r3d list -----------------------------------------------------------------------------------------------
def test_cli_list_shows_builtins_and_an_installed_plugin(tmp_path):
    _write_module(tmp_path, "r3d_test_plugin_cli", "cli_fuser", cls="CliFuser", doc="Fuser from a test plugin.")
    _write_dist(tmp_path, "r3d-test-plugin-cli", {"cli": "r3d_test_plugin_cli"})
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "r3d", "list"], capture_output=True, text=True, env=env, timeout=300,
                       cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr[-3000:]
    sections, current = {}, None
    for line in r.stdout.splitlines():
        if not line.startswith(" "):
            current = line.split(" (")[0]
            sections[current] = {}
        else:
            name, rest = line.strip().split(None, 1)
            sections[current][name] = rest
    for kind, names in {"fusers": ["rtf", "concat", "cli_fuser"], "backbones": ["frame2d", "linear", "inflated3d"],
                        "heads": ["causal_transformer"]}.items():
        for name in names:
            assert name in sections.get(kind, {}), f"{kind}: '{name}' missing from:\n{r.stdout}"
    assert sections["fusers"]["cli_fuser"] == ("Fuser from a test plugin.  [r3d_test_plugin_cli.CliFuser "
                                               "(entry point 'cli' of r3d-test-plugin-cli)]")
    assert sections["backbones"]["inflated3d"].endswith("[r3d.models.backbones.inflated3d.InflatedBackbone3D]")
    assert "I3D" in sections["backbones"]["inflated3d"]


# -- the worked example: examples/plugin_fuser ------------------------------------------------------------------------
def _example_from_custom_imports(monkeypatch):
    monkeypatch.syspath_prepend(str(EXAMPLE))
    FUSERS._entries.pop("gated", None)  # (isolated copy) in case an installed copy was loaded by an earlier lookup
    import_custom_modules_from({"custom_imports": ["r3d_plugin_example.gated_fuser"]})
    return FUSERS.get("gated")


def test_example_gated_fuser_numbers_presence_and_gradients(isolated):
    from r3d.models.fusers.base import Fuser, FuserOutput

    cls = _example_from_custom_imports(isolated)
    assert issubclass(cls, Fuser) and cls.__module__ == "r3d_plugin_example.gated_fuser"
    torch.manual_seed(0)
    b, t, c = 4, 3, 6
    fuser = FUSERS.build("gated", dim=c, modalities=("rgb", "depth"))
    a = torch.randn(b, t, c, requires_grad=True)
    d = torch.randn(b, t, c, requires_grad=True)
    present = {"rgb": torch.tensor([True, False, True, False]), "depth": torch.tensor([True, True, False, False])}
    out = fuser({"rgb": a, "depth": d}, present)
    assert isinstance(out, FuserOutput) and out.fused.shape == (b, t, c) and out.aux_loss is None

    w, bias = fuser.gate.weight, fuser.gate.bias  # by hand: g = σ(a W_a^T + d W_d^T + c)
    g = torch.sigmoid(a[0] @ w[:, :c].T + d[0] @ w[:, c:].T + bias)
    torch.testing.assert_close(out.fused[0], g * a[0] + (1 - g) * d[0])
    torch.testing.assert_close(out.fused[1], d[1])  # only depth present: its tokens, not a mix with zeros
    torch.testing.assert_close(out.fused[2], a[2])  # only RGB present
    assert torch.equal(out.fused[3], torch.zeros(t, c))  # nothing present
    torch.testing.assert_close(out.tokens["rgb"], a * present["rgb"].view(b, 1, 1))

    out.fused.square().sum().backward()
    assert a.grad[0].abs().sum() > 0 and d.grad[0].abs().sum() > 0
    assert torch.equal(a.grad[1], torch.zeros(t, c)) and torch.equal(d.grad[2], torch.zeros(t, c))
    # the gate learns only from samples where both modalities are present
    ref = FUSERS.build("gated", dim=c, modalities=("rgb", "depth"))
    ref.load_state_dict(fuser.state_dict())
    ref({"rgb": a[:1].detach(), "depth": d[:1].detach()}, None).fused.square().sum().backward()
    torch.testing.assert_close(fuser.gate.weight.grad, ref.gate.weight.grad)

    with pytest.raises(ValueError, match="exactly 2 modalities"):
        FUSERS.build("gated", dim=c, modalities=("rgb",))
    assert FUSERS.build("gated", dim=c, gate_bias=2.0).gate.bias.eq(2.0).all()


def test_example_plugin_in_an_anticipator_from_the_config(isolated):
    from r3d.models.anticipator import Anticipator

    cfg = load_config(None, ["model.fuser=gated", "custom_imports=[r3d_plugin_example.gated_fuser]",
                             "model.fuser_args.gate_bias=1.0", "model.dim=16", "model.head_args.depth=1",
                             "data.num_frames=3", "data.img_size=32", "model.depth_backbone.kind=inflated3d"])
    isolated.syspath_prepend(str(EXAMPLE))
    FUSERS._entries.pop("gated", None)
    import_custom_modules_from(cfg)
    torch.manual_seed(0)
    model = Anticipator(cfg, {"verb": 3, "noun": 4, "action": 5})
    assert type(model.fuser).__name__ == "GatedFuser" and model.fuser.gate.bias.eq(1.0).all()
    batch = {"rgb": torch.randn(2, 3, 3, 32, 32), "depth": torch.rand(2, 3, 1, 32, 32),
             "present": {"rgb": torch.tensor([True, False]), "depth": torch.tensor([True, True])}}
    out = model(batch)
    assert out["logits"]["action"].shape == (2, 5) and out["fused"].shape == (2, 3, 16)
    sum(v.float().sum() for v in out["logits"].values()).backward()
    assert model.fuser.gate.weight.grad.abs().sum() > 0


def test_example_plugin_entry_point(isolated):
    """Runs where the example is installed (CI: `pip install -e examples/plugin_fuser`); skipped elsewhere."""
    try:
        dist = importlib.metadata.distribution("r3d-plugin-example")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("r3d-plugin-example is not installed (pip install -e examples/plugin_fuser)")
    eps = [ep for ep in dist.entry_points if ep.group == registry.ENTRY_POINT_GROUP]
    assert [(ep.name, ep.value) for ep in eps] == [("gated", "r3d_plugin_example.gated_fuser")]
    FUSERS._entries.pop("gated", None)  # (isolated copy) so that the lookup below must go through the entry point
    cls = FUSERS.get("gated")
    assert cls.__name__ == "GatedFuser"
    (entry,) = [e for e in FUSERS.entries() if e.name == "gated"]
    assert entry.source == ("r3d_plugin_example.gated_fuser.GatedFuser "
                            "(entry point 'gated' of r3d-plugin-example)")
    out = FUSERS.build("gated", dim=4)({"rgb": torch.ones(1, 2, 4), "depth": torch.zeros(1, 2, 4)})
    assert out.fused.shape == (1, 2, 4)
