"""nbpack: notebook bundles exchanged between ESAP and Jupyter."""

__version__ = "0.1.0"
__all__ = ["__version__"]
