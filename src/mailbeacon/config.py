"""Settings, read once from the environment (``MAILBEACON_*``), an optional TOML file and CLI flags."""

from __future__ import annotations

import ipaddress
import json
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Role = Literal["web", "smtp", "worker"]
ALL_ROLES: tuple[Role, ...] = ("web", "smtp", "worker")


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
    trusted_proxies: Annotated[list[IPNetwork], NoDecode] = Field(default_factory=list)
    # Group commit: hits handled while a batch forms share its transaction; a window waits longer.
    event_batch_window_ms: float = Field(default=0.0, ge=0, le=1000)
    event_batch_max: int = Field(default=2000, ge=1, le=100_000)
    # "full": fsync every commit (survives power loss); "normal": survives a crash of the process only.
    sqlite_synchronous: Literal["full", "normal"] = "full"
    max_request_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    log_level: str = "info"
    # Which parts this process runs; `serve` runs all of them unless told otherwise.
    roles: Annotated[list[Role], NoDecode] = Field(default_factory=lambda: list(ALL_ROLES))

    # --- SMTP intake ---
    smtp_host: str = ""  # empty: the same address as `host`
    smtp_port: int = Field(default=2525, ge=0, le=65535)
    smtp_hostname: str = Field(default_factory=socket.getfqdn)  # in the banner, EHLO and Received lines
    smtp_tls_cert: Path | None = None  # PEM; without one (and no self-signed one in data_dir) no STARTTLS
    smtp_tls_key: Path | None = None
    smtp_max_message_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    smtp_max_recipients: int = Field(default=1000, ge=1)
    smtp_max_connections: int = Field(default=200, ge=1)
    smtp_timeout_s: float = Field(default=300.0, gt=0)

    # --- delivery ---
    delivery_mode: Literal["direct", "smarthost"] = "direct"
    smarthost: str = ""  # host:port of the upstream server in smarthost mode
    smarthost_username: str = ""
    smarthost_password: SecretStr = SecretStr("")
    smarthost_tls: Literal["starttls", "tls", "opportunistic", "none"] = "starttls"
    smarthost_tls_verify: bool = True  # check the smarthost's certificate and name
    direct_port: int = Field(default=25, ge=1, le=65535)  # the port of recipients' MX hosts
    # Direct delivery to loopback, private, link-local addresses (and address literals naming them).
    delivery_allow_private_addresses: bool = False
    dns_nameservers: Annotated[list[str], NoDecode] = Field(
        default_factory=list
    )  # empty: the system's resolvers
    delivery_concurrency: int = Field(default=50, ge=1, le=10_000)
    delivery_domain_concurrency: int = Field(default=5, ge=1, le=1000)
    delivery_max_age_s: float = Field(default=3 * 24 * 3600.0, gt=0)
    delivery_retry_initial_s: float = Field(default=60.0, gt=0)
    delivery_retry_max_s: float = Field(default=3600.0, gt=0)
    delivery_timeout_s: float = Field(default=60.0, gt=0)
    delivery_lease_s: float = Field(default=600.0, gt=0)
    delivery_poll_s: float = Field(default=1.0, gt=0)
    helo_name: str = ""  # empty: smtp_hostname
    # Where bounces come back: copies leave with the return path bounces+TOKEN@bounce_domain.
    bounce_domain: str = ""  # empty: the host of public_base_url
    dkim_dir: Path | None = None  # empty: data_dir/dkim

    # --- insight (geolocation of opens and clicks) ---
    # A MaxMind DB file of country (and ASN) data: IPinfo, or GeoLite2 Country/City. Empty: the IPinfo
    # Lite file shipped with parsedmarc.
    geoip_database: Path | None = None
    geoip_asn_database: Path | None = None  # a separate ASN file, e.g. GeoLite2-ASN.mmdb

    # --- DMARC reports ---
    # Where reporters mail DMARC aggregate, failure and SMTP TLS reports (rua=mailto:, ruf=, TLSRPT).
    dmarc_report_address: str = ""  # empty: dmarc@bounce_domain
    dmarc_max_report_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)  # a report file or upload

    @field_validator("trusted_proxies", "roles", "dns_nameservers", mode="before")
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value.startswith("["):
                return json.loads(value)
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

    def resolved_smtp_host(self) -> str:
        return self.smtp_host or self.host

    def resolved_helo_name(self) -> str:
        return self.helo_name or self.smtp_hostname

    def resolved_bounce_domain(self) -> str:
        if self.bounce_domain:
            return self.bounce_domain.lower()
        host = urlsplit(self.resolved_public_base_url()).hostname or "localhost"
        return host.lower()

    def resolved_dmarc_report_address(self) -> str:
        return (self.dmarc_report_address or f"dmarc@{self.resolved_bounce_domain()}").lower()

    def resolved_dkim_dir(self) -> Path:
        return self.dkim_dir or self.data_dir / "dkim"

    def resolved_tls_files(self) -> tuple[Path, Path] | None:
        """The SMTP certificate and key: configured ones, else a self-signed pair made by `init`."""
        if self.smtp_tls_cert and self.smtp_tls_key:
            return self.smtp_tls_cert, self.smtp_tls_key
        cert, key = self.data_dir / "tls" / "smtp-cert.pem", self.data_dir / "tls" / "smtp-key.pem"
        return (cert, key) if cert.is_file() and key.is_file() else None

    def to_environment(self) -> dict[str, str]:
        """These settings as MAILBEACON_* variables, for worker processes that read them again."""
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json", exclude_none=True).items():
            secret = getattr(self, name)
            if isinstance(secret, SecretStr):
                value = secret.get_secret_value()
            env[f"MAILBEACON_{name.upper()}"] = json.dumps(value) if isinstance(value, list) else str(value)
        return env
