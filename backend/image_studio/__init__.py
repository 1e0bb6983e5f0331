"""Image Studio for Open WebUI: one request shape over many image and video generators."""

__version__ = "0.1.0"
