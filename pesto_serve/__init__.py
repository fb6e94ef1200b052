"""The PESTO service runtime: a project's `Process` served over HTTP (bottle + waitress).

The same code runs in an image (`python -m pesto_serve`, configured by `PESTO_*` variables
and `/etc/pesto`) and on the host (`pesto-serve PROJECT_DIR`). It imports the project model
and the payload types, never docker, pytest or deepdiff.
"""
