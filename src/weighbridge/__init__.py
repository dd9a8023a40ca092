"""weighbridge: the weighbridge every open-weight model crosses before it is published."""

__version__ = "0.1.0"
