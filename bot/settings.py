"""Settings: config/settings.toml defaults, each overridable by a CB_<KEY> environment variable."""

from __future__ import annotations

from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any

from pydantic import field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    NoDecode,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"
WECHAT_PUBLIC_API = "https://api.weixin.qq.com"
WECOM_PUBLIC_API = "https://qyapi.weixin.qq.com"


class Settings(BaseSettings):
    """Every setting the service reads; see config/settings.toml for what each means."""

    model_config = SettingsConfigDict(
        env_prefix="CB_",
        case_sensitive=False,
        toml_file=CONFIG_DIR / "settings.toml",
        extra="ignore",
    )

    database_url: str = ""
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    timezone: str = "Asia/Shanghai"
    var_dir: str = "var"
    log_level: str = "INFO"
    public_base_url: str = ""

    wechat_token: str = "communitybot-demo-token"
    wechat_appid: str = "wxdemo0000000000"
    wechat_secret: str = "demo-secret"
    wechat_aes_key: str = ""
    wechat_api_base: str = ""
    wechat_template_id: str = "community-notice"

    wecom_corpid: str = "wwdemo0000000000"
    wecom_secret: str = "demo-wecom-secret"
    wecom_agentid: int = 1000002
    wecom_token: str = "communitybot-wecom-token"
    wecom_aes_key: str = ""
    wecom_api_base: str = ""
    wecom_group_webhook_key: str = "demo-group-key"

    roster: str = "config/roster.toml"
    simulator: bool | None = None
    api_token: str = ""
    console_secret: str = ""
    console_admin_password: str = "community123"  # the demo admin seeded when no console user exists
    trusted_proxies: Annotated[list[str], NoDecode] = []  # peers whose X-Forwarded-For names the client

    survey_delay_s: int = 7200
    accept_sla_s: int = 1800
    flow_idle_nudge_s: int = 1800
    flow_expire_s: int = 7200
    dedup_ttl_s: int = 300
    quiet_hours: str = "21:00-08:00"
    daily_push_cap: int = 5
    scheduler: bool = True

    outbox_sender: bool = True
    outbox_max_attempts: int = 8
    outbox_timeout_s: float = 10.0
    outbox_lease_s: int = 60

    @field_validator("simulator", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """An empty string in TOML or the environment means 'decide from the backend'."""
        return None if value == "" else value

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, value: Any) -> Any:
        """CB_TRUSTED_PROXIES is comma-separated; every entry must be an IP address or network."""
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, (list, tuple)):
            for entry in value:
                try:
                    ip_network(str(entry), strict=False)
                except ValueError as exc:
                    raise ValueError(f"trusted_proxies: {entry!r} is not an IP address or network") from exc
            return [str(entry) for entry in value]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Explicit arguments win, then CB_* variables, then config/settings.toml."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    # Derived values -----------------------------------------------------------------------

    @property
    def var_path(self) -> Path:
        """The directory for the SQLite file, caches and generated secrets."""
        path = Path(self.var_dir)
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def embedded(self) -> bool:
        """True on the embedded default (no database URL configured)."""
        return not self.database_url

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL in force."""
        return self.database_url or f"sqlite+aiosqlite:///{self.var_path / 'communitybot.db'}"

    @property
    def simulator_on(self) -> bool:
        """Whether /sim is served and the API bases point at it."""
        return self.embedded if self.simulator is None else self.simulator

    @property
    def self_url(self) -> str:
        """How this service reaches itself (the simulator posts to its own /wechat)."""
        return self.public_base_url.rstrip("/") or f"http://{self.host}:{self.port}"

    @property
    def wechat_api(self) -> str:
        """Base URL of the official-account API."""
        if self.wechat_api_base:
            return self.wechat_api_base.rstrip("/")
        return f"{self.self_url}/sim/wechat-api" if self.simulator_on else WECHAT_PUBLIC_API

    @property
    def wecom_api(self) -> str:
        """Base URL of the WeCom API."""
        if self.wecom_api_base:
            return self.wecom_api_base.rstrip("/")
        return f"{self.self_url}/sim/wecom-api" if self.simulator_on else WECOM_PUBLIC_API

    @property
    def roster_path(self) -> Path:
        """The roster TOML file."""
        path = Path(self.roster)
        return path if path.is_absolute() else REPO_ROOT / path

    @property
    def quiet_window(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """Quiet hours as ((start_h, start_m), (end_h, end_m)) in local time."""
        start, end = self.quiet_hours.split("-")
        sh, sm = (int(x) for x in start.strip().split(":"))
        eh, em = (int(x) for x in end.strip().split(":"))
        return (sh, sm), (eh, em)


def load_settings(**overrides: Any) -> Settings:
    """Settings from TOML and environment, with explicit overrides (used by tests) on top."""
    return Settings(**overrides)
