"""Adapters for the private APIs clf cannot do without, one module per library.

Each module keeps every private call to its library in one place and names the versions it is
tested with; pyproject.toml bounds those libraries to that range, and tests/test_compat.py fails
with a message naming the adapter when an upgrade moves one of the private names.
"""
