"""The client backends by name. Imported lazily: the neonize module loads a Go library, and a simulator
session process must never load it. The simulator is an app of its own (simulator/), installed only with
its backend."""

import importlib

from .base import BackendError, ClientBackend

BACKENDS = ("neonize", "simulator")


def backend_class(name: str) -> type[ClientBackend]:
    if name == "simulator":
        from simulator.backend import SimulatorBackend

        return SimulatorBackend
    if name == "neonize":
        from .neonize_backend import NeonizeBackend

        return NeonizeBackend
    if ":" in name:  # "package.module:Class", a backend of one's own (the fault tests use this)
        module, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(module), attr, None)
        if isinstance(cls, type) and issubclass(cls, ClientBackend):
            return cls
    raise ValueError(f"unknown WHATSAPP_BACKEND {name!r}: use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "BackendError", "ClientBackend", "backend_class"]
