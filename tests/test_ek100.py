"""EPIC-KITCHENS-100 anticipation submission: the exported JSON follows the official format (version "0.2",
"action_anticipation", sls, every verb/noun score, exactly 100 "verb,noun" action scores) and the validator rejects
broken files."""
import copy
import json

import pytest
import torch

from r3d.metrics import assert_valid_ek100, export_ek100_json, top_action_entries, validate_ek100_json

V, NN = 6, 25  # 150 pairs ≥ 100
SLS = {"sls_pt": 2, "sls_tl": 3, "sls_td": 4}


def _inputs(n=3, a=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(V * NN, generator=g)[:a]
    actions = torch.stack([perm // NN, perm % NN], 1)
    return ([f"P01_101_{i}" for i in range(n)], torch.randn(n, V, generator=g), torch.randn(n, NN, generator=g),
            torch.randn(n, a, generator=g), actions)


def test_export_passes_validator_and_keeps_the_top_100(tmp_path):
    ids, vs, ns, acts_s, actions = _inputs()
    path = tmp_path / "sub" / "test.json"
    written = export_ek100_json(path, ids, vs, ns, acts_s, actions, SLS)
    sub = json.loads(path.read_text())
    assert sub == json.loads(json.dumps(written))
    assert validate_ek100_json(path, V, NN, narration_ids=ids) == []
    assert_valid_ek100(sub, V, NN)
    assert sub["version"] == "0.2" and sub["challenge"] == "action_anticipation"
    assert (sub["sls_pt"], sub["sls_tl"], sub["sls_td"]) == (2, 3, 4)
    for i, nid in enumerate(ids):
        entry = sub["results"][nid]
        assert entry["verb"] == {str(c): pytest.approx(vs[i, c].item()) for c in range(V)}
        assert list(entry["noun"]) == [str(c) for c in range(NN)]
        assert len(entry["action"]) == 100
        # the 100 best vocabulary actions, by an independent sort
        order = sorted(range(actions.shape[0]), key=lambda a: -acts_s[i, a].item())[:100]
        expected = {f"{actions[a, 0].item()},{actions[a, 1].item()}": acts_s[i, a].item() for a in order}
        assert set(entry["action"]) == set(expected)
        for key, s in expected.items():
            assert entry["action"][key] == pytest.approx(s)


def test_small_vocabulary_is_filled_with_out_of_vocabulary_products(tmp_path):
    ids, vs, ns, acts_s, actions = _inputs(n=2, a=10, seed=1)
    sub = export_ek100_json(tmp_path / "small.json", ids, vs, ns, acts_s, actions, {"pt": 0, "tl": 0, "td": 0})
    assert validate_ek100_json(sub, V, NN) == []
    vocab = {(v, n) for v, n in actions.tolist()}
    for i, nid in enumerate(ids):
        items = sorted(sub["results"][nid]["action"].items(), key=lambda kv: -kv[1])
        pairs = [tuple(int(x) for x in k.split(",")) for k, _ in items]
        # first the 10 vocabulary actions in the model's own order
        own = sorted(range(10), key=lambda a: -acts_s[i, a].item())
        assert pairs[:10] == [tuple(actions[a].tolist()) for a in own]
        # then 90 pairs outside the vocabulary, in the order of p(v)·p(n), all below the lowest vocabulary score
        fill = pairs[10:]
        assert len(fill) == 90 and not (set(fill) & vocab)
        pv, pn = vs[i].softmax(0), ns[i].softmax(0)
        outside = sorted(((v, n) for v in range(V) for n in range(NN) if (v, n) not in vocab),
                         key=lambda p: -(pv[p[0]] * pn[p[1]]).item())
        assert fill == outside[:90]
        assert max(s for _, s in items[10:]) < min(s for _, s in items[:10])


def test_top_action_entries_needs_enough_pairs():
    with pytest.raises(ValueError, match="fewer than"):
        top_action_entries(torch.zeros(1, 3), torch.zeros(1, 4), torch.zeros(1, 2), torch.tensor([[0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="duplicate"):
        top_action_entries(torch.zeros(1, V), torch.zeros(1, NN), torch.zeros(1, 2), torch.tensor([[0, 0], [0, 0]]))


def test_export_rejects_bad_sls(tmp_path):
    ids, vs, ns, acts_s, actions = _inputs(n=1)
    with pytest.raises(ValueError, match="sls_td"):
        export_ek100_json(tmp_path / "x.json", ids, vs, ns, acts_s, actions, {"sls_pt": 1, "sls_tl": 1})
    with pytest.raises(ValueError, match="0-5"):
        export_ek100_json(tmp_path / "x.json", ids, vs, ns, acts_s, actions, {**SLS, "sls_pt": 6})


@pytest.fixture(scope="module")
def valid_submission(tmp_path_factory):
    ids, vs, ns, acts_s, actions = _inputs(n=2, seed=2)
    return export_ek100_json(tmp_path_factory.mktemp("ek") / "ok.json", ids, vs, ns, acts_s, actions, SLS)


def _break(sub, how):
    bad = copy.deepcopy(sub)
    first = next(iter(bad["results"].values()))
    if how == "version":
        bad["version"] = "0.1"
    elif how == "challenge":
        bad["challenge"] = "action_recognition"
    elif how == "sls":
        bad["sls_tl"] = 7
    elif how == "99 actions":
        first["action"].pop(next(iter(first["action"])))
    elif how == "missing verb key":
        first["verb"].pop("3")
    elif how == "extra noun key":
        first["noun"][str(NN)] = 0.1
    elif how == "bad key format":
        key = next(iter(first["action"]))
        first["action"][key.replace(",", ";")] = first["action"].pop(key)
    elif how == "spaced key":
        key = next(iter(first["action"]))
        first["action"][key.replace(",", ", ")] = first["action"].pop(key)
    elif how == "action out of range":
        key = next(iter(first["action"]))
        first["action"][f"{V},0"] = first["action"].pop(key)
    elif how == "non-numeric score":
        first["noun"]["0"] = "0.5"
    elif how == "missing action":
        first.pop("action")
    elif how == "no results":
        bad.pop("results")
    return bad


BROKEN = ["version", "challenge", "sls", "99 actions", "missing verb key", "extra noun key", "bad key format",
          "spaced key", "action out of range", "non-numeric score", "missing action", "no results"]


@pytest.mark.parametrize("how", BROKEN)
def test_validator_rejects_broken_submissions(valid_submission, how):
    assert validate_ek100_json(valid_submission, V, NN) == []
    problems = validate_ek100_json(_break(valid_submission, how), V, NN)
    assert problems, how
    with pytest.raises(ValueError, match="invalid EK100"):
        assert_valid_ek100(_break(valid_submission, how), V, NN)


def test_validator_messages_and_ids(valid_submission, tmp_path):
    problems = validate_ek100_json(_break(valid_submission, "99 actions"), V, NN)
    assert problems == ["results['P01_101_0']['action']: 99 action scores, exactly 100 required"]
    assert any("missing" in p and "[3]" in p for p in validate_ek100_json(_break(valid_submission, "missing verb key"),
                                                                        V, NN))
    ids = list(valid_submission["results"])
    assert validate_ek100_json(valid_submission, V, NN, narration_ids=ids) == []
    problems = validate_ek100_json(valid_submission, V, NN, narration_ids=ids + ["P99_1_0"])
    assert len(problems) == 1 and "P99_1_0" in problems[0]
    bad_file = tmp_path / "bad.json"
    bad_file.write_text("{not json")
    assert "cannot read JSON" in validate_ek100_json(bad_file, V, NN)[0]
