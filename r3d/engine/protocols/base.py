"""The interface of an anticipation protocol (`data.protocol`): what differs between protocols, in one place.

The trainer, `tools/test.py` and the data builder ask the run's protocol for its dataset class, its loss, its
evaluation pass and a one-line summary, instead of branching on `data.protocol`. The built-ins are in this package
(`next_action.py`, `long_term.py`); a plugin registers another with ``@PROTOCOLS.register("name")`` (module listed in
`custom_imports`).
"""
from __future__ import annotations

from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import torch

from ...config import Config, ConfigError
from ...registry import PROTOCOLS


class AnticipationProtocol:
    """One anticipation protocol. Subclasses implement every method; `check` runs when the protocol is built."""

    name = ""
    dataset_cls: Optional[type] = None  # the dataset class of the protocol (an `r3d.data.dataset.AnticipationDataset`)
    exports_ek100 = False  # whether `tools/test.py --export-ek100` applies

    def check(self, cfg: Config) -> None:
        """Raise ConfigError when the config cannot run this protocol (one line naming the key)."""

    def loss(self, outputs: Mapping[str, Any], batch: Mapping[str, Any], cfg: Config
             ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
        """(total scalar, {name: detached scalar}) of one batch, auxiliary model losses included."""
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, loader, accelerator, cfg: Config, collapse: bool = False,
                 reliance: bool = False, observed_fractions: Sequence[float] = (),
                 drop_modality: Optional[str] = None) -> Dict[str, Any]:
        """Metrics of one pass over `loader` (gathered over processes)."""
        raise NotImplementedError

    def summary(self, metrics: Mapping[str, Any]) -> str:
        """One line of the headline validation metrics (printed after each validated epoch)."""
        raise NotImplementedError


def build_protocol(cfg: Config) -> AnticipationProtocol:
    """The protocol named by `data.protocol`, checked against the config."""
    try:
        protocol = PROTOCOLS.build(cfg.data.protocol)
    except KeyError:
        raise ConfigError(f"config key 'data.protocol' is '{cfg.data.protocol}'; known protocols: "
                          f"{', '.join(PROTOCOLS.names())}") from None
    protocol.check(cfg)
    return protocol
