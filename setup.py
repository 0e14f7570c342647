"""Packaging shim for tornado-sio.

All metadata lives in ``pyproject.toml`` (``[project]``, PEP 621); the version is
read from ``tornado_sio/__init__.py`` by setuptools without importing the package.
This file stays because tools that call ``setup.py`` directly expect it.
"""

from setuptools import setup

setup()
