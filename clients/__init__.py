"""Vendor HTTP clients. They know wire formats and error classes; they never import ``tasks``."""
