"""pytest plugin: `pytest --pesto-image=NAME:TAG` tests a PESTO service image."""
