"""pyfiledrop: a self-hosted drop for very large files."""

__version__ = "0.1.0"
__all__ = ["__version__"]
