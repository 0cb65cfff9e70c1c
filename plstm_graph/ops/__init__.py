"""Numeric kernels: one package per operator, the readable reference beside each fast kernel."""
from .plstm import plstm

__all__ = ["plstm"]
