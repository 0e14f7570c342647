"""The docs site builds: Sphinx, with warnings as errors, from docs/ (conf.py, index.md, api.rst).

The build needs the ``docs`` extra (Sphinx, myst-parser, furo). Without it the
build test skips with the command that installs it, and fails under ``CI=true``
(``.ci/docs.sh`` installs it). The API page is also checked against
``tornado_sio.__all__`` without Sphinx, so a new public name without a
reference entry fails on every machine.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import tornado_sio
from tests import support

DOCS = support.ROOT / "docs"
BUILD_TIMEOUT = 100.0  # seconds; below the suite's 120 s per-test timeout
#: Public names documented as module-level objects of tornado_sio; the rest of __all__ by their own name.
ELSEWHERE = {"Emitter": "tornado_sio.emitter.Emitter"}
_DIRECTIVE = re.compile(r"^\.\. (?:auto)?(?:class|function|exception|data)::\s+(\S+)", re.MULTILINE)


def documented_names() -> list[str]:
    """The objects ``docs/api.rst`` documents, as dotted names (``tornado_sio.emit``)."""
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    return [name if "." in name else f"tornado_sio.{name}" for name in _DIRECTIVE.findall(text)]


def test_api_reference_names_every_public_name() -> None:
    documented = set(documented_names())
    missing = [name for name in tornado_sio.__all__ if f"tornado_sio.{name}" not in documented]
    assert not missing, f"docs/api.rst does not document {missing}"
    assert ELSEWHERE["Emitter"] in documented


def test_api_reference_lists_every_attribute_of_request() -> None:
    # `request` is documented in prose (its class is private): the prose must keep up with it
    text = (DOCS / "api.rst").read_text(encoding="utf-8")
    section = text[text.index(".. data:: request"):text.index(".. data:: session")]
    names = [name for name in dir(type(tornado_sio.request)) if not name.startswith("_")]
    missing = [name for name in names if f"``{name}``" not in section]
    assert not missing, f"the request entry of docs/api.rst does not mention {missing}"


def test_every_guide_is_in_the_toctree() -> None:
    index = (DOCS / "index.md").read_text(encoding="utf-8")
    toctree = "\n".join(re.findall(r"```\{toctree\}(.*?)```", index, re.DOTALL))
    entries = {line.strip() for line in toctree.splitlines() if line.strip() and not line.startswith(":")}
    guides = {path.stem for path in DOCS.glob("*.md")} - {"index"}
    assert guides <= entries, f"guides missing from the toctree of docs/index.md: {sorted(guides - entries)}"
    assert "{include} ../README.md" in index


def test_sphinx_builds_with_warnings_as_errors(tmp_path: Path) -> None:
    for module in ("sphinx", "myst_parser", "furo"):
        if importlib.util.find_spec(module) is None:
            support.missing(f"Python module {module} not found (the docs build needs it): pip install -e '.[docs]'")
    out = tmp_path / "html"
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "-q", "--no-color",
               "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(command, cwd=str(support.ROOT), check=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT)
    log = proc.stdout.decode("utf-8", "replace")
    assert proc.returncode == 0, f"sphinx -W failed ({' '.join(command)}):\n{log}"

    # every public name has an entry (autodoc imported and rendered it) ...
    api = (out / "api.html").read_text(encoding="utf-8")
    for name in tornado_sio.__all__:
        target = ELSEWHERE.get(name, f"tornado_sio.{name}")
        assert f'id="{target}"' in api, f"api.html has no entry for {target}"
    # ... and the front page links every guide and the API page
    index = (out / "index.html").read_text(encoding="utf-8")
    for page in [*(path.stem for path in DOCS.glob("*.md") if path.stem != "index"), "api"]:
        assert f'href="{page}.html"' in index, f"index.html does not link {page}.html"
