"""Settings: config/settings.toml defaults, each overridable by a CB_<KEY> environment variable."""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from ipaddress import ip_network
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import PrivateAttr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    NoDecode,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from bot.config_files import NotUtf8, read_toml

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO_ROOT / "config"
WECHAT_PUBLIC_API = "https://api.weixin.qq.com"
WECOM_PUBLIC_API = "https://qyapi.weixin.qq.com"
DEMO_ROSTER = CONFIG_DIR / "roster.toml"
DEMO_CONSOLE_PASSWORD = "community123"
PLACEHOLDER = "CHANGE-ME"  # deploy/env.example's mark for a value the operator must fill in
_HHMM = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
_DB_SCHEMES = ("sqlite+aiosqlite://", "postgresql+asyncpg://")
_REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
_POSITIVE = (
    "survey_delay_s", "accept_sla_s", "flow_idle_nudge_s", "flow_expire_s", "dedup_ttl_s",
    "outbox_max_attempts", "outbox_timeout_s", "outbox_lease_s",
)


class _SettingsFile(TomlConfigSettingsSource):
    """config/settings.toml, read as every configuration file is (a Notepad BOM allowed)."""

    def _read_file(self, file_path: Path | Any) -> dict[str, Any]:
        return read_toml(file_path)


class SettingsError(ValueError):
    """Settings that cannot run the service; one line per problem, naming the CB_* variable."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


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
    console_admin_password: str = DEMO_CONSOLE_PASSWORD  # the demo admin seeded when no console user exists
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
                    raise ValueError(f"{entry!r} is not an IP address or network, e.g. 127.0.0.1 or 10.0.0.0/8") from exc
            return [str(entry) for entry in value]
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_hours(cls, value: str) -> str:
        """HH:MM-HH:MM in local time, e.g. 21:00-08:00."""
        parts = value.split("-")
        if len(parts) != 2 or not all(_HHMM.match(part) for part in parts):
            raise ValueError(f"{value!r} is not HH:MM-HH:MM, e.g. 21:00-08:00")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        """An IANA time zone name, e.g. Asia/Shanghai."""
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not a known time zone, e.g. Asia/Shanghai") from exc
        return value

    @field_validator("wechat_aes_key", "wecom_aes_key")
    @classmethod
    def _aes_key(cls, value: str) -> str:
        """Empty, or an EncodingAESKey: 43 characters of base64 (32 bytes)."""
        if not value:
            return value
        try:
            ok = len(value) == 43 and len(base64.b64decode(value + "=", validate=True)) == 32
        except (binascii.Error, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"must be the 43-character EncodingAESKey (letters and digits), got {len(value)} characters")
        return value

    @field_validator("wechat_token", "wecom_token")
    @classmethod
    def _token(cls, value: str) -> str:
        """The Token the platform signs every callback with: empty, anyone could sign one."""
        if not value.strip():
            raise ValueError("must not be empty: it signs every message (with none, anyone could forge one); "
                             "put the Token set in the platform's admin page")
        return value

    @field_validator(*_POSITIVE)
    @classmethod
    def _positive(cls, value: float) -> float:
        """Durations and counts that must be above zero."""
        if value <= 0:
            raise ValueError(f"must be greater than 0, got {value}")
        return value

    @field_validator("daily_push_cap")
    @classmethod
    def _not_negative(cls, value: int) -> int:
        """A count that may be zero."""
        if value < 0:
            raise ValueError(f"must be 0 or more, got {value}")
        return value

    @field_validator("port")
    @classmethod
    def _port(cls, value: int) -> int:
        """A TCP port."""
        if not 1 <= value <= 65535:
            raise ValueError(f"must be a port from 1 to 65535, got {value}")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        """A logging level name."""
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
            raise ValueError(f"{value!r} is not DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value.upper()

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Empty, or an async SQLAlchemy URL."""
        if value and not value.startswith(_DB_SCHEMES):
            hint = " (write postgresql+asyncpg://…)" if value.startswith(("postgresql:", "postgres:", "postgresql+psycopg")) else ""
            raise ValueError(f"must start with {' or '.join(_DB_SCHEMES)}{hint}")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _public_base_url(cls, value: str) -> str:
        """Empty, or the http(s) address residents' and staff's links use."""
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with https:// (or http://), e.g. https://bot.example-community.cn")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        """Empty, or a Redis URL."""
        if value and not value.startswith(_REDIS_SCHEMES):
            raise ValueError(f"must start with {', '.join(_REDIS_SCHEMES)}")
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
        return (init_settings, env_settings, _SettingsFile(settings_cls))

    _roster_given: bool = PrivateAttr(default=False)

    # Derived values -----------------------------------------------------------------------

    @property
    def roster_is_demo(self) -> bool:
        """Whether the roster in force is the shipped demo (CB_ROSTER not set): loaded at start
        only while the database holds no roster, never over an operator's import."""
        return not self._roster_given and self.roster_path == DEMO_ROSTER


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


def config_name(path: Path) -> str:
    """A configuration file's name for the operator: relative to the checkout (config/messages.toml)
    when it is inside it, else the full path."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def _variable(loc: tuple[Any, ...]) -> str:
    return f"CB_{str(loc[0]).upper()}" if loc else "settings"


def _reason(error: Any) -> str:
    """A validation error as the operator reads it: our validators' own sentence (which names the
    value), or pydantic's type error with the value given (CB_PORT=80a: "… got '80a'")."""
    if error["type"] == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    return f"{error['msg']}, got {error['input']!r}"


def _given(settings: Settings | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """The values in force: the settings' when they were built, else what was given (arguments,
    then the environment), so what is wrong with them is said together with what failed to validate."""
    if settings is not None:
        return settings.model_dump()
    environ = {key.upper(): value for key, value in os.environ.items()}
    return {name: overrides.get(name, environ.get(f"CB_{name.upper()}")) for name in Settings.model_fields}


def _console_password_problem(password: Any) -> str | None:
    """The console admin's password must be one the console accepts, else every login page fails."""
    if not isinstance(password, str) or password == DEMO_CONSOLE_PASSWORD or PLACEHOLDER in password:
        return None
    from bot.console.auth import MIN_PASSWORD  # not at the top: the console imports this module

    if len(password) < MIN_PASSWORD:
        return (f"CB_CONSOLE_ADMIN_PASSWORD: must be at least {MIN_PASSWORD} characters (the console's "
                f"minimum), got {len(password)}")
    return None


def load_settings(**overrides: Any) -> Settings:
    """Settings from TOML and environment, with explicit overrides (used by tests) on top;
    SettingsError naming every bad CB_* variable, all at once (one line each)."""
    invalid: dict[str, list[str]] = {}
    settings: Settings | None = None
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            invalid.setdefault(_variable(error["loc"]), []).append(_reason(error))
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError([f"config/settings.toml: {exc}"]) from exc
    except NotUtf8 as exc:
        raise SettingsError([f"config/settings.toml: is not UTF-8 text (byte {exc.byte}); save it as UTF-8"]) from exc
    given = _given(settings, overrides)
    problems: list[str] = []
    for name, value in given.items():
        variable = f"CB_{name.upper()}"
        if isinstance(value, str) and PLACEHOLDER in value:
            also = "".join(f" ({reason})" for reason in invalid.pop(variable, []))
            problems.append(f"{variable}: still {PLACEHOLDER} from deploy/env.example; fill in the real value{also}")
    problems[:0] = [f"{variable}: {reason}" for variable, reasons in invalid.items() for reason in reasons]
    if problem := _console_password_problem(given.get("console_admin_password")):
        problems.append(problem)
    if problems or settings is None:
        raise SettingsError(problems)
    settings._roster_given = "roster" in overrides or any(k.upper() == "CB_ROSTER" for k in os.environ)
    return settings
