"""The REST API (FastAPI). `create_app` builds it; `weighbridge serve` runs it under uvicorn."""

from weighbridge.api.app import create_app
from weighbridge.api.settings import ApiSettings, Argon2Cost

__all__ = ["ApiSettings", "Argon2Cost", "create_app"]
