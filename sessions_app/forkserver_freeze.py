"""Imported last by the forkserver (session_process.preload_modules), after every other preload: what
the preloads built (modules, classes, functions) moves to the garbage collector's permanent generation.
A session process's collections then never walk those objects, so the pages holding them stay shared
with the forkserver instead of being copied into every session process."""

import gc

gc.collect()
gc.freeze()
