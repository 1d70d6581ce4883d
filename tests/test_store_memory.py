"""The store contract, run on the in-memory store."""

from __future__ import annotations

from typing import Any

import pytest
from store_contract import StoreContract, StoreFactory

from bridge.store.memory import MemoryStore


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        def make(**kw: Any) -> MemoryStore:
            return MemoryStore(**kw)

        return make
