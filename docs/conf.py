"""Sphinx configuration: the API reference (autodoc) and the Markdown guides (MyST).

Build it as CI does (``.ci/docs.sh``), with warnings as errors::

    pip install -e '.[docs]'
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # document the work tree, installed or not

import tornado_sio  # noqa: E402  (after the path above)

project = "tornado-sio"
author = "The tornado-sio authors"
copyright = "the tornado-sio authors"
release = tornado_sio.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]

# The guides are Markdown (MyST), the API page is reST.
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: "#setup"-style links between and inside the guides resolve to headings.
myst_heading_anchors = 3

# autodoc: members in source order, signatures without the type-hint noise
# (the types are shown in the description instead).
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"members": True}
autodoc_preserve_defaults = True

try:
    import furo  # noqa: F401

    html_theme = "furo"
except ImportError:  # pragma: no cover - the docs extra installs furo
    html_theme = "alabaster"
html_title = f"tornado-sio {release}"
