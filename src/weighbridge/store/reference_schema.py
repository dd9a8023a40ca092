"""Pinned references and their stored runs (migration 0009)."""

from __future__ import annotations
