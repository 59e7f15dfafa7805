"""Manabi's training engine: plain PyTorch, no Django. A job spec in, events out, artifacts on disk."""
