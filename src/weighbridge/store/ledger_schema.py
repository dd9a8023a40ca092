"""Ledger tables: entries and signed checkpoints (append-only; migration 0005)."""

from __future__ import annotations
