"""Shared fixtures. The whole suite runs offline: any attempt to open a network connection
fails the test that made it."""
from __future__ import annotations

import os
import socket

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np
import pytest


class NetworkAccessError(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    def refuse(self, address, *args, **kwargs):
        if isinstance(address, tuple) and address and address[0] not in ("127.0.0.1", "localhost", "::1"):
            raise NetworkAccessError(f"test tried to reach {address}")
        return real_connect(self, address, *args, **kwargs)

    real_connect = socket.socket.connect
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="session")
def bundled():
    """All bundled models, loaded once: name -> LoadedModel."""
    from verify.models import bundled_models, load_model

    return {name: load_model(name) for name in bundled_models()}


@pytest.fixture(scope="session")
def digits():
    from verify.data import test_digits

    return test_digits(100)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
