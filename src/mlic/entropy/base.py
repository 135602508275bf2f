"""Common machinery of entropy models that code through integer CDF tables."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._torch_internals import version_key
from ..coding import CdfTables
from ..errors import TableError
from ..coding.tables import pack_tables

_TABLE_BUFFERS = ("cdf", "cdf_length", "offset")


class TabledEntropyModel(nn.Module):
    """An entropy model whose coding tables are registered buffers.

    The tables (``cdf``, ``cdf_length``, ``offset``; see :mod:`mlic.coding.tables`)
    are built by :meth:`update` and saved with the weights, so the encoder and
    the decoder read identical integers whatever machine rebuilds the model.
    Loading a state dict resizes them to the stored shapes.
    """

    def __init__(self, likelihood_bound: float = 1e-9) -> None:
        super().__init__()
        self.likelihood_bound = float(likelihood_bound)
        self.register_buffer("cdf", torch.zeros(0, 0, dtype=torch.int32))
        self.register_buffer("cdf_length", torch.zeros(0, dtype=torch.int32))
        self.register_buffer("offset", torch.zeros(0, dtype=torch.int32))
        self._coder_tables: tuple[tuple, CdfTables] | None = None

    # -- tables ---------------------------------------------------------
    @property
    def has_tables(self) -> bool:
        return self.cdf.numel() > 0

    def _set_tables(self, cdfs: list[np.ndarray], offsets: list[int]) -> None:
        cdf, lengths, offset = pack_tables(cdfs, offsets)
        device = self.cdf.device
        self.cdf = torch.from_numpy(cdf).to(device)
        self.cdf_length = torch.from_numpy(lengths).to(device)
        self.offset = torch.from_numpy(offset).to(device)

    def coder_tables(self) -> CdfTables:
        """The tables as :class:`mlic.coding.CdfTables`, rebuilt only when the buffers change."""
        if not self.has_tables:
            raise TableError(f"{type(self).__name__} has no coding tables; call update() first")
        key = tuple(version_key(t) for t in (self.cdf, self.cdf_length, self.offset))
        if self._coder_tables is None or self._coder_tables[0] != key:
            tables = CdfTables(self.cdf.cpu().numpy(), self.cdf_length.cpu().numpy(), self.offset.cpu().numpy())
            self._coder_tables = (key, tables)
        return self._coder_tables[1]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        for name in _TABLE_BUFFERS:
            key = prefix + name
            if key in state_dict:
                stored = state_dict[key]
                setattr(self, name, torch.zeros_like(stored, dtype=torch.int32, device=getattr(self, name).device))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
