"""Manabi's training engine: plain PyTorch, no Django.

A job spec in, events out, artifacts written to a directory.
"""
