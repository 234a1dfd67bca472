"""The client backends by name. Imported lazily: the neonize module loads a Go library, and a simulator
session process must never load it."""

from .base import BackendError, ClientBackend

BACKENDS = ("neonize", "simulator")


def backend_class(name: str) -> type[ClientBackend]:
    if name == "simulator":
        from .simulator_backend import SimulatorBackend

        return SimulatorBackend
    if name == "neonize":
        from .neonize_backend import NeonizeBackend

        return NeonizeBackend
    raise ValueError(f"unknown WHATSAPP_BACKEND {name!r}: use one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "BackendError", "ClientBackend", "backend_class"]
