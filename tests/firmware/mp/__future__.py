# `from __future__ import annotations` for the stand-ins shared with CPython: MicroPython ignores
# annotations anyway (micropython-lib ships the same one-line module).
annotations = True
