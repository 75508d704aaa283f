"""maxgate: a self-hosted GREEN-API v3 compatible gateway for the MAX messenger."""

__version__ = "0.1.0"
