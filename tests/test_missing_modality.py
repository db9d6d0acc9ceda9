"""`tools/test.py --drop-modality M` changes the inputs the model sees, and nothing else (issue: EBR and missing
modality). Checked on the batches a recording model actually receives inside `evaluate.predict`."""
import copy

import pytest
import torch
import torch.nn as nn
from accelerate import Accelerator

from r3d.engine.evaluate import drop_modality_inputs, predict

B, T = 3, 4


def _batch(seed: int) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {
        "rgb": torch.rand(B, T, 3, 8, 8, generator=g) + 0.1,      # strictly positive: zeros are visible
        "depth": torch.rand(B, T, 1, 8, 8, generator=g) + 0.1,
        "present": {"rgb": torch.ones(B, dtype=torch.bool), "depth": torch.tensor([True, False, True])},
        "verb": torch.tensor([0, 1, 2]), "noun": torch.tensor([1, 2, 0]), "action": torch.tensor([2, 0, 1]),
        "index": torch.arange(B) + 10 * seed,
    }


class Recorder(nn.Module):
    """Records a deep copy of every batch it is given; logits are a fixed function of the inputs."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = []
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, batch):
        self.seen.append(copy.deepcopy(batch))
        s = batch["rgb"].flatten(1).sum(1) + 2 * batch["depth"].flatten(1).sum(1)
        logits = {k: torch.stack([s * (i + 1) for i in range(3)], dim=1) * self.w for k in ("verb", "noun", "action")}
        return {"logits": logits, "present": batch["present"]}


def _assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    else:
        assert torch.equal(a, b)


@pytest.mark.parametrize("mod,other", [("depth", "rgb"), ("rgb", "depth")])
def test_drop_modality_changes_only_that_modality_and_its_presence(mod, other):
    loader = [_batch(0), _batch(1)]
    originals = copy.deepcopy(loader)
    acc = Accelerator(cpu=True)
    full, dropped = Recorder(), Recorder()
    predict(full, loader, acc)
    predict(dropped, loader, acc, drop_modality=mod)
    _assert_same(loader, originals)  # the loader's batches are not modified in place
    assert len(full.seen) == len(dropped.seen) == 2
    for a, b in zip(full.seen, dropped.seen):
        assert a.keys() == b.keys()
        for k in a:
            if k in (mod, "present"):
                continue
            _assert_same(a[k], b[k])  # labels, indices and the other modality: bit-identical
        assert torch.count_nonzero(b[mod]) == 0 and b[mod].shape == a[mod].shape and b[mod].dtype == a[mod].dtype
        assert not b["present"][mod].any()
        assert torch.equal(b["present"][other], a["present"][other])


def test_drop_modality_inputs_is_identity_without_a_modality_and_names_a_missing_key():
    batch = _batch(0)
    assert drop_modality_inputs(batch, None) is batch
    with pytest.raises(KeyError, match="no 'ir' input"):
        drop_modality_inputs(batch, "ir")


def test_drop_modality_also_zeroes_cached_features():
    batch = {"feats_depth": torch.rand(B, T, 16) + 0.1, "feats_rgb": torch.rand(B, T, 16) + 0.1}
    out = drop_modality_inputs(batch, "depth")
    assert torch.count_nonzero(out["feats_depth"]) == 0 and torch.equal(out["feats_rgb"], batch["feats_rgb"])
    assert out["present"]["depth"].tolist() == [False] * B
    assert torch.count_nonzero(batch["feats_depth"]) == B * T * 16  # the input batch is untouched
