"""Settings, read once from the environment (``MAILBEACON_*``), an optional TOML file and CLI flags."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'mailbeacon.db').resolve()}"


class Settings(BaseSettings):
    """Everything a mailbeacon process needs to know; see docs/configuration.md."""

    model_config = SettingsConfigDict(env_prefix="MAILBEACON_", extra="forbid")

    data_dir: Path = Path("mailbeacon-data")
    database_url: str = ""
    host: str = "127.0.0.1"
    port: int = Field(default=8025, ge=0, le=65535)
    public_base_url: str = ""
    workers: int = Field(default=1, ge=1, le=64)
    trusted_proxies: list[IPNetwork] = Field(default_factory=list)
    # Group commit: hits handled while a batch forms share its transaction; a window waits longer.
    event_batch_window_ms: float = Field(default=0.0, ge=0, le=1000)
    event_batch_max: int = Field(default=2000, ge=1, le=100_000)
    # "full": fsync every commit (survives power loss); "normal": survives a crash of the process only.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    log_level: str = "info"

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("public_base_url")
    @classmethod
    def _check_base_url(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                "public_base_url must be an absolute http(s) URL, e.g. https://track.example.com"
            )
        if parts.query or parts.fragment:
            raise ValueError("public_base_url must not carry a query or fragment")
        return value.rstrip("/")

    def resolved_database_url(self) -> str:
        return self.database_url or default_database_url(self.data_dir)

    def resolved_public_base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"
