"""Typed settings: a TOML file, then ``KALLIOPE_*`` environment variables.

The TOML file may group keys in tables (``[database] url = ...``); a table key
``database.url`` and the environment variable ``KALLIOPE_DATABASE_URL`` name the
same setting, so an operator can read either form off ``config show``.
Precedence, highest first: explicit overrides, environment, TOML, defaults.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

ENV_PREFIX = "KALLIOPE_"
CONFIG_ENV = "KALLIOPE_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("kalliope-tel.toml"), Path("/etc/kalliope-tel/kalliope-tel.toml"))


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the key."""


def _default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "kalliope-tel"


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in table.items():
        name = f"{prefix}{key}".replace("-", "_")
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}_"))
        else:
            flat[name] = value
    return flat


class _TomlSource(PydanticBaseSettingsSource):
    """Reads the TOML file and flattens ``[table] key`` into ``table_key``."""

    def __init__(self, settings_cls: type[BaseSettings], path: Path | None) -> None:
        super().__init__(settings_cls)
        self.path = path
        self.data: dict[str, Any] = {}
        if path is not None:
            try:
                self.data = _flatten(tomllib.loads(path.read_text()))
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
            except OSError as exc:
                raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
            unknown = sorted(set(self.data) - set(settings_cls.model_fields))
            if unknown:
                raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self.data)


def split_bind(value: str, setting: str = "bind") -> tuple[str, int]:
    """``HOST:PORT`` (an IPv6 host may be in brackets) as (host, port); every
    listen address of kalliope-tel (FastAGI, web, ARI outbound) goes through it."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{setting} {value!r}: use HOST:PORT, e.g. 127.0.0.1:4573")
    return host.strip("[]"), int(port)


def find_config_file(explicit: Path | None = None) -> Path | None:
    """The TOML file in use: ``--config``, ``$KALLIOPE_CONFIG``, ./, then /etc."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    if from_env:
        return Path(from_env)
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


class Settings(BaseSettings):
    """Every setting of kalliope-tel. Unset Asterisk addresses mean "the lab"."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid")

    # Store
    database_url: str = ""
    # Where files live (SQLite default store, received faxes, reports).
    data_dir: Path = Field(default_factory=_default_data_dir)
    archive_dir: Path | None = None

    # Asterisk. Empty URLs mean: use the running lab Asterisk named lab_name.
    ari_url: str = ""
    ari_username: str = ""
    ari_password: SecretStr = SecretStr("")
    ari_app: str = "kalliope"
    # ARI outbound websockets (Asterisk 22.5+): where this node accepts the
    # websockets Asterisk opens for calls the dialplan sends to Stasis(ari_app)
    # (websocket_client.conf points at it, or at a load balancer in front of
    # several nodes). Empty: inbound mode, this node subscribes to ari_app
    # itself. Asterisk authenticates with the username and password below
    # (websocket_client.conf's username/password). Plain HTTP GET /health on
    # the same port answers load balancers' checks.
    ari_outbound_bind: str = ""
    ari_outbound_username: str = "asterisk"
    ari_outbound_password: SecretStr = SecretStr("")
    # What 'asterisk render' tells Asterisk to connect to: the load balancer
    # in front of the nodes (ws://HOST:PORT/ari); empty: this node's bind.
    ari_outbound_uri: str = ""
    # per_call_config: a websocket per call, spread over the nodes by the
    # load balancer; persistent: one websocket for every call (failover only).
    ari_outbound_connection: Literal["per_call_config", "persistent"] = "per_call_config"
    ami_url: str = ""
    ami_username: str = ""
    ami_password: SecretStr = SecretStr("")
    # FastAGI listen address. Empty: the lab's when using the lab, else 127.0.0.1:4573.
    agi_bind: str = ""
    # The Asterisk servers allowed to connect to FastAGI (addresses or
    # networks); others are refused at accept. Needed when agi_bind is not
    # loopback: a request's pbx= is believed, so a stranger must not send one.
    agi_allowed_peers: list[str] = Field(default_factory=list)
    # Where 'asterisk apply' writes the generated files (Asterisk's etc dir);
    # unset with the lab: the lab's own etc dir.
    asterisk_config_dir: Path | None = None
    # How a room's devices are dialled: {account} or {extension} is replaced.
    # Unset: PJSIP/{account}, or the lab's room phones when using the lab.
    asterisk_device_template: str = ""
    # serve writes and reloads the generated configuration by itself when a
    # change reaches what it is made from (off: run 'asterisk apply' yourself).
    asterisk_auto_apply: bool = True
    # Where Asterisk finds the extensions' PJSIP accounts. "files": in
    # kalliope/pjsip_<slug>.conf, a res_pjsip reload per change (fine to a few
    # thousand endpoints; works without serve). "realtime": Asterisk asks
    # serve (res_config_curl, sorcery.conf/extconfig.conf/res_curl.conf from
    # 'asterisk realtime-conf'), keeps them in a memory cache that serve
    # expires on a change, and nothing is reloaded: provider scale.
    pjsip_accounts: Literal["files", "realtime"] = "files"
    # Where serve answers Asterisk's realtime questions, and the HTTP Basic
    # credentials Asterisk gives (empty with the lab: the lab's own).
    realtime_bind: str = ""
    realtime_username: str = "asterisk"
    realtime_password: SecretStr = SecretStr("")

    # The directory phones search. Empty URL: the embedded slapd of
    # directory_dir ('kalliope-tel directory up'; scripts/run.sh starts it),
    # whose state file holds its port and passwords. Otherwise an existing
    # directory, written as directory_admin_dn, with the phones' passwords
    # derived from directory_phones_secret.
    directory_url: str = ""
    directory_dir: Path | None = None  # default: <data_dir>/directory
    directory_base_dn: str = "dc=kalliope"
    directory_admin_dn: str = ""
    directory_admin_password: SecretStr = SecretStr("")
    directory_phones_secret: SecretStr = SecretStr("")

    # The hotel PMS link (FIAS): an alive record (LA) after this long without
    # sending. A link with nothing heard for pms_dead_seconds is opened again,
    # for a PMS that answers LA (0, the default: many PMSs stay quiet for
    # hours; a vanished PMS is noticed by TCP keepalive and a write timeout).
    pms_alive_seconds: float = 20.0
    pms_dead_seconds: float = 0.0

    # Mail
    smtp_url: str = "smtp://127.0.0.1:25"
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    # Sender of the mails kalliope-tel writes (fax received, transmission reports).
    mail_from: str = "kalliope-tel@localhost"

    # Lab Asterisk (chroot) used when no Asterisk address is configured.
    lab_root: Path = Path("/var/cache/kalliope-tel/asterisk-sid")
    lab_name: str = "default"

    # How often serve checks whether a scheduled job (nightly cleaning reset) is due.
    scheduler_interval_seconds: float = Field(default=60.0, gt=0)
    # This node's name in job records (default: host name and pid).
    node_name: str = ""
    # A node silent this long (no heartbeat, written every 5 s) is gone: its
    # calls, claimed jobs and fax slots are taken up by the others. The same
    # on every node of an installation.
    node_gone_seconds: int = Field(default=60, ge=15, le=3600)

    # Billing: Asterisk's CDR file (asterisk-conf/cdr_custom.conf) that serve
    # reconciles against, so calls made while it was down are recorded; ""
    # when this node cannot read it (AMI only). Ignored with the lab (its own).
    cdr_file: str = "/var/log/asterisk/cdr-custom/kalliope-cdr.json"
    billing_reconcile_seconds: float = Field(default=30.0, gt=0)
    # Feature plugins to run (hotel, wakeup, fax); unset: all of them.
    features: list[str] | None = None
    # Simultaneous fax calls per node; over it calls are refused (0: no cap).
    fax_max_calls: int = Field(default=50, ge=0)
    # Share of one core the fax media clock may take before new fax calls are
    # refused (0: not checked): past a core every call in progress breaks at
    # once. See kalliope_tel/fax/admission.py and 'kalliope-tel bench fax'.
    fax_max_media_load: float = Field(default=0.7, ge=0, le=1)
    # Built-in archive encryption: a base64 32-byte key (AES-256-GCM); see
    # 'kalliope-tel fax archive keygen'. A secret: give it in the environment
    # or a file readable by kalliope-tel only.
    fax_archive_key: SecretStr = SecretStr("")
    # How often serve looks for fax jobs and deliveries that are due (seconds).
    fax_tick_seconds: float = Field(default=2.0, gt=0)
    # Documents to fax pages, in converter processes apart from serve's (see
    # kalliope_tel/fax/conversion.py): how many at once, how many more may
    # wait (a web upload past that is refused with 503), and each one's
    # memory (MiB) and time (seconds, CPU and wall clock) before it is refused.
    fax_convert_workers: int = Field(default=2, ge=1, le=64)
    fax_convert_queue: int = Field(default=8, ge=0, le=1000)
    fax_convert_memory_mb: int = Field(default=1024, ge=256)
    fax_convert_seconds: int = Field(default=300, ge=10)

    # LAM meeting rooms on a Jitsi Meet site: its base URL, the app id and
    # secret of its token authentication (a secret: environment or a private
    # file), and how long before the start and after the end links work.
    lam_jitsi_url: str = ""
    lam_jitsi_app_id: str = "kalliope-tel"
    lam_jitsi_secret: SecretStr = SecretStr("")
    lam_link_margin_minutes: int = Field(default=10, ge=0, le=240)

    # Web panels and REST API (served by 'serve'): host:port; port 0 picks a
    # free one (tests). Put TLS in front (a reverse proxy) beyond loopback.
    http_bind: str = "127.0.0.1:8080"
    # Cookies only over HTTPS: set when the panels are reached through TLS.
    http_secure_cookies: bool = False
    # The address people reach the panels at (https://pbx.example.com), for
    # links in mails (password reset); empty: the address the administrator used.
    http_public_url: str = Field(default="", max_length=200, pattern=r"^(https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?/?)?$")
    # Take the client's address from X-Forwarded-For (behind a proxy you run),
    # for the login rate limit and the audit.
    http_trust_forwarded: bool = False
    # The proxies whose X-Forwarded-For is believed (addresses or networks):
    # the client is the right-most address not among them. Empty, with
    # http_trust_forwarded on: loopback only.
    http_trusted_proxies: list[str] = Field(default_factory=list)
    # Password checks per window (minutes): for one account from one address,
    # from one address over all accounts, and for one account from addresses
    # that never logged in to it (its owner's usual addresses are not held
    # back by the last). Past one, 429 until the window ends.
    login_max_pair_guesses: int = Field(default=5, ge=1)
    login_max_address_guesses: int = Field(default=20, ge=1)
    login_max_account_guesses: int = Field(default=10, ge=1)
    login_window_minutes: int = Field(default=15, ge=1)
    # Days the audit of web logins and actions is kept.
    web_audit_days: int = Field(default=400, ge=1)
    # How often a node reads the change feed besides being woken (seconds;
    # 0: 0.25 on SQLite, where another process's writes ring no bell, 5 on
    # PostgreSQL, where LISTEN/NOTIFY wakes it).
    live_poll_seconds: float = Field(default=0, ge=0)

    # Diagnosing stalls: report every event-loop step slower than this many
    # milliseconds, naming the callback or task (asyncio debug mode; slower). 0: off.
    debug_slow_callback_ms: float = Field(default=0, ge=0)

    log_level: str = "info"
    log_format: str = "console"

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if value and urlsplit(value).scheme.split("+")[0] not in (
            "sqlite",
            "postgresql",
            "postgres",
        ):
            raise ValueError("must be a sqlite:///PATH or postgresql://USER@HOST/DB URL")
        return value

    @field_validator("ari_url", "smtp_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if value and not urlsplit(value).scheme:
            raise ValueError("must be a URL with a scheme, e.g. http://127.0.0.1:8088/ari")
        if value and urlsplit(value).password:
            raise ValueError("put the password in its own *_password setting, not in the URL")
        return value

    @field_validator("ami_url")
    @classmethod
    def _check_ami_url(cls, value: str) -> str:
        if value:
            parts = urlsplit(value)
            if parts.scheme != "tcp" or not parts.hostname or not parts.port:
                raise ValueError("must look like tcp://HOST:PORT")
        return value

    @field_validator("agi_bind", "ari_outbound_bind")
    @classmethod
    def _check_bind(cls, value: str) -> str:
        if value:
            split_bind(value)
        return value

    @field_validator("mail_from")
    @classmethod
    def _check_mail_from(cls, value: str) -> str:
        from kalliope_tel.mail.addresses import check_address

        return check_address(value)

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value.lower() not in ("debug", "info", "warning", "error"):
            raise ValueError("must be one of debug, info, warning, error")
        return value.lower()

    @field_validator("log_format")
    @classmethod
    def _check_format(cls, value: str) -> str:
        if value not in ("console", "json"):
            raise ValueError("must be console or json")
        return value

    @model_validator(mode="after")
    def _check_agi_peers(self) -> Settings:
        from kalliope_tel.peers import Peers, is_loopback_host

        Peers.parse(self.agi_allowed_peers, "agi_allowed_peers entry")
        Peers.parse(self.http_trusted_proxies, "http_trusted_proxies entry")
        if self.agi_bind and not is_loopback_host(split_bind(self.agi_bind)[0]) and not self.agi_allowed_peers:
            raise ValueError(
                f"agi_bind {self.agi_bind} is reachable from other machines: set agi_allowed_peers to the "
                "Asterisk servers' addresses (anyone else could send FastAGI requests for any PBX)"
            )
        return self

    @model_validator(mode="after")
    def _check_outbound_credentials(self) -> Settings:
        # An open ARI endpoint would let anyone inject calls' events.
        if self.ari_outbound_bind and not self.ari_outbound_password.get_secret_value():
            raise ValueError("ari_outbound_bind needs ari_outbound_password (Asterisk's websocket_client password)")
        return self

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'kalliope-tel.sqlite3'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _TomlSource(settings_cls, _CONFIG_FILE.get())


class _ConfigFileSlot:
    """Which TOML file the next ``load_settings`` reads (sources take no arguments)."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def get(self) -> Path | None:
        return self.path


_CONFIG_FILE = _ConfigFileSlot()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build the settings, turning any validation error into one ``ConfigError``."""
    _CONFIG_FILE.path = find_config_file(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "settings"
            env = ENV_PREFIX + key.upper()
            problems.append(f"{key} ({env}): {err['msg']}")
        source = f" (file {_CONFIG_FILE.path})" if _CONFIG_FILE.path else ""
        raise ConfigError("invalid configuration" + source + ": " + "; ".join(problems)) from None
    finally:
        _CONFIG_FILE.path = None


SECRET_MASK = "********"  # noqa: S105 - the mask, not a secret


def masked(settings: Settings) -> dict[str, str]:
    """The effective settings as strings, with every secret masked."""
    shown: dict[str, str] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            shown[name] = SECRET_MASK if value.get_secret_value() else ""
        elif value is None:
            shown[name] = ""
        else:
            shown[name] = str(value)
    shown["database_url"] = mask_url_password(settings.effective_database_url)
    return shown


def mask_url_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", f":{SECRET_MASK}@")
        return parts._replace(netloc=netloc).geturl()
    return url
