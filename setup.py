"""Packaging for tornado-sio. The version is read from tornado_sio/__init__.py
without importing the package (its dependencies may not be installed yet)."""

import re
from pathlib import Path

from setuptools import setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    text = (HERE / "tornado_sio" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r"""^__version__\s*=\s*['"]([^'"]+)['"]""", text, re.MULTILINE)
    if not match:
        raise RuntimeError("no __version__ = '...' line in tornado_sio/__init__.py")
    return match.group(1)


def read_long_description() -> str:
    readme = HERE / "README.md"
    return readme.read_text(encoding="utf-8") if readme.exists() else ""


setup(
    name="tornado-sio",
    version=read_version(),
    description="A Socket.IO (Engine.IO v4 / Socket.IO v5) server for Tornado, with Flask-SocketIO's API",
    long_description=read_long_description(),
    long_description_content_type="text/markdown",
    packages=["tornado_sio", "tornado_sio.protocol", "tornado_sio.transports"],
    package_data={"tornado_sio": ["static/*.js"]},
    include_package_data=True,
    zip_safe=False,
    python_requires=">=3.9",
    install_requires=[
        "tornado>=6.5.8",
        "sockjs-tornado>=1.0.7",
    ],
    extras_require={
        "redis": ["redis>=5.0", "msgpack>=1.0"],
        "fast": ["orjson>=3.11.5"],
        "test": [
            "pytest",
            "pytest-timeout",
            "hypothesis",
            "python-socketio[asyncio-client]>=5.14",
            "aiohttp",
            # the Python package only: the tests drive Debian's chromium, never `playwright install`
            "playwright",
            "redis>=5.0",
            "websocket-client",
        ],
    },
    classifiers=[
        "Framework :: Tornado",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Topic :: Internet :: WWW/HTTP",
    ],
)
