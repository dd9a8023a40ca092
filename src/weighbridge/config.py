"""The reviewer's settings file: `$WEIGHBRIDGE_HOME/config.toml`, or the file `WEIGHBRIDGE_CONFIG` names.

Settings that belong to an organisation rather than to one command: which signer each submitting
lab is expected to sign with, and who is told when a review's deadline nears. A missing file means
the defaults; a file that does not parse or names unknown settings is an error that says which
line or key is wrong (a typo must not silently turn a check off).

```toml
[signers."Acme Labs"]                  # what `submit --lab "Acme Labs"` requires of a Sigstore bundle
identity = "release@acme.example"
issuer = "https://accounts.google.com"

[deadlines]
warn_days = [7, 2]                     # `weighbridge reviews` escalates at these many days left
hook = "notify-send weighbridge \"$WEIGHBRIDGE_ALERT\""   # run once per escalation (optional)
```
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from weighbridge.errors import WeighbridgeError


class SignerPolicy(BaseModel):
    """The signer a lab's Sigstore bundles must name: certificate identity and OIDC issuer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    identity: str = Field(min_length=1)
    issuer: str = Field(min_length=1)


class DeadlineSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    warn_days: tuple[float, ...] = (7.0, 2.0)
    hook: str | None = None


class Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    signers: dict[str, SignerPolicy] = Field(default_factory=dict)
    deadlines: DeadlineSettings = Field(default_factory=DeadlineSettings)


def config_path() -> Path:
    from weighbridge.store.db import default_home

    env = os.environ.get("WEIGHBRIDGE_CONFIG")
    return Path(env).expanduser() if env else default_home() / "config.toml"


def load_config(path: Path | None = None) -> Config:
    """The settings in `path` (default: `config_path()`); defaults when the file does not exist."""
    path = path or config_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise WeighbridgeError(f"Cannot read the settings file {path}: {exc}", "Fix its permissions") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WeighbridgeError(f"The settings file {path} is not valid TOML: {exc}", "Fix that line") from None
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise WeighbridgeError(f"The settings file {path} has a wrong setting ({where})", "Fix or remove it") from None
