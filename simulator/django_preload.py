"""Imported by the forkserver (SimulatorBackend.PRELOAD_MODULES) to set Django up once, before it forks:
session processes that use the ORM then start at once and share those pages instead of each paying
for its own setup (about 0.8 s of CPU and tens of MB). No database connection is opened here.

The forkserver only tolerates ImportError from a preloaded module, so any failure is turned into a
log line: the session processes then set Django up themselves."""

import logging

try:
    import django

    django.setup()
except Exception:  # noqa: BLE001 - a failure here must not take the forkserver down
    logging.getLogger(__name__).exception("Django could not be set up in the forkserver")
