"""Published notices and revocations (migration 0007)."""

from __future__ import annotations
