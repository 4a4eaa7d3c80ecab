"""The package version, in a module of its own: a module that records it (the training run's metadata) imports
this one, not the lazy public facade ``ncprobe/__init__.py``, which stands above every layer."""

__version__ = "0.1.0"
