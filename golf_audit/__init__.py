"""golf-audit: compliance and audit toolkit for OpenAI's Parameter Golf challenge."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("golf-audit")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.1.0"

__all__ = ["__version__"]
