"""Users, roles and review workflow tables (migration 0006)."""

from __future__ import annotations
