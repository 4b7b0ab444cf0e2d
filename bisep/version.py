"""The package version, in a module of its own so that any module can name it without importing the
package facade (``bisep/__init__.py`` re-exports the public API)."""

__version__ = "0.1.0"
