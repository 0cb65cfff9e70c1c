"""pLSTM on DAGs for PyTorch Geometric. See ``SPEC.md``-fixed public names below."""
__version__ = "0.1.0"
