"""Every A2A_* setting, parsed and validated in one place.

Nothing else in the project reads ``os.environ`` for A2A settings: Django settings,
the commands, the worker and the tests all take a :class:`Config` built here.
A bad value raises :class:`ConfigError` with one line naming the variable and
what it accepts, so that nothing starts half-configured.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from queueapp.config_fields import SettingFields

BASE_DIR = Path(__file__).resolve().parent.parent

EVICTING_POLICY_PREFIXES = ("allkeys-", "volatile-")
MAXMEMORY_POLICIES = (
    "noeviction",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
)


class ConfigError(ValueError):
    """A setting has a value the system cannot run with."""


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float:
    """Parse a Go-style duration (``5s``, ``500ms``, ``1h30m``) into seconds.

    A bare number is taken as seconds, which is what most people mean.
    """
    text = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return float(text)
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(text)
    return total


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):  # not '': an emptied line of .env must not turn a default of true off
        return False
    raise ValueError(text)


def parse_map(text: str) -> dict[str, str]:
    """Parse the map form ``key:value,key:value`` used by A2A_QUEUE_OPTIONS."""
    result: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition(":")
        if not sep or not key.strip():
            raise ValueError(item)
        result[key.strip().lower()] = value.strip()
    return result


def parse_list(text: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in text.split(",") if item.strip())


@dataclass(frozen=True)
class Setting:
    """One environment variable: its parser, default and the words used in errors."""

    env: str
    parse: Callable[[str], Any]
    default: str
    accepts: str
    check: Callable[[Any], bool] = lambda value: True
    map_key: tuple[str, str] | None = None  # (map variable, key) for the A2A_QUEUE_OPTIONS form
    unset_is_none: bool = False  # left unset, the value is None (A2A_QUEUE_OPTIONS_DB: the URL's database)

    @property
    def name(self) -> str:
        """The attribute of :class:`Config`: the variable without ``A2A_``, lower-cased."""
        return self.env.removeprefix("A2A_").lower()


def _int(minimum: int, maximum: int | None = None) -> Callable[[Any], bool]:
    return lambda value: value >= minimum and (maximum is None or value <= maximum)


def _folder_path(value: str) -> bool:
    """A folder, or a path that can become one: its nearest existing part is a folder.

    Not whether it is writable: a worker on an external Redis never writes there, and may
    run on a read-only file system.
    """
    path = Path(value).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return bool(value) and path.is_dir()


def _positive(value: float) -> bool:
    return value > 0


EMAIL_SCHEMES = ("smtp", "smtp+tls", "smtps", "file")


def _email_url(value: str) -> bool:
    parts = urlsplit(value)
    return value == "" or (parts.scheme in EMAIL_SCHEMES and bool(parts.hostname if parts.scheme != "file" else parts.path))


LOCAL_HOSTS = ("localhost", "127.0.0.1", "[::1]")


def default_allowed_hosts(public_url: str, server_host: str) -> tuple[str, ...]:
    """The host names a request may name when A2A_ALLOWED_HOSTS is unset.

    Never ``*``: Django builds absolute links (the agent card, a password-reset mail)
    from the request's Host header, which a client sets to whatever it likes.
    """
    hosts = list(LOCAL_HOSTS)
    public_host = urlsplit(public_url).hostname if public_url else None
    listen = None if server_host in ("", "0.0.0.0", "::") else server_host
    for host in filter(None, (public_host, listen)):
        entry = f"[{host}]" if ":" in host else host
        if entry not in hosts:
            hosts.append(entry)
    return tuple(hosts)


def _issuer_url(value: str) -> bool:
    """An https URL without query or fragment; plain http only on a loopback host (development)."""
    if not value:
        return True
    try:
        parts = urlsplit(value)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    if not host or parts.query or parts.fragment or "#" in value:
        return False
    if parts.scheme == "https":
        return True
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return parts.scheme == "http" and loopback


def _base_url(value: str) -> bool:
    """An absolute http(s) URL with a host, a port that is a number, and no credentials, query or fragment."""
    if not value:
        return True
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and "@" not in parts.netloc and not (parts.query or parts.fragment or "?" in value or "#" in value)


_URL_USERINFO = re.compile(r"^([A-Za-z][\w+.-]*://).*@", re.DOTALL)
_URL_SECRET_QUERY = re.compile(r"([?&](?:password|username)=)[^&#]*", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with its user and password (``user:pass@``, ``?password=``) shown as ``***``, for error messages.

    Works on text that is no valid URL too: everything up to the last ``@`` after the scheme is
    hidden, since a password may hold any character.
    """
    return _URL_SECRET_QUERY.sub(r"\1***", _URL_USERINFO.sub(r"\1***@", url))


def named_secrets(entries: tuple[str, ...], prefix: str) -> tuple[tuple[str, str], ...]:
    """(identity, secret) of each entry of A2A_AUTH_TOKENS or A2A_AUTH_API_KEYS.

    An entry is ``name:secret``, or a bare secret, whose identity is ``prefix-N`` (N counts the entries from 1).
    """
    named = []
    for index, entry in enumerate(entries, start=1):
        name, sep, secret = entry.partition(":")
        named.append((name.strip(), secret) if sep and name.strip() and secret else (f"{prefix}-{index}", entry))
    return tuple(named)


def _shared_secret(variable: str, entries: tuple[str, ...], prefix: str, what: str) -> str | None:
    """The error when one secret is given to two identities (which one a request is would be a guess); never names the secret."""
    owners: dict[str, str] = {}
    for identity, secret in named_secrets(entries, prefix):
        first = owners.setdefault(secret, identity)
        if first != identity:
            return f"{variable} is invalid: one {what} is given to two identities, {first} and {identity}: expected each identity to have {what}s of its own"
    return None


def _host_port(value: str) -> bool:
    host, sep, port = value.rpartition(":")
    return bool(sep and host and port.isdigit() and 0 < int(port) < 65536)


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting("A2A_QUEUE_PROVIDER", str.lower, "redis", "'redis' or 'memory'", lambda v: v in ("redis", "memory")),
        Setting("A2A_QUEUE_URL", str.strip, "", "a redis://, rediss://, unix://, redis+sentinel:// or redis+cluster:// URL"),
        Setting("A2A_QUEUE_OPTIONS_DB", int, "", "a database number from 0 to 15", _int(0, 15), ("A2A_QUEUE_OPTIONS", "db"), unset_is_none=True),
        Setting("A2A_QUEUE_OPTIONS_MAX_RETRIES", int, "3", "a whole number of retries, 0 or more", _int(0), ("A2A_QUEUE_OPTIONS", "max_retries")),
        Setting("A2A_QUEUE_OPTIONS_TIMEOUT", parse_duration, "5s", "a duration such as 5s, 500ms or 2m", _positive, ("A2A_QUEUE_OPTIONS", "timeout")),
        Setting(
            "A2A_QUEUE_OPTIONS_MAXMEMORY_POLICY",
            str.lower,
            "",
            "one of " + ", ".join(MAXMEMORY_POLICIES),
            lambda v: v == "" or v in MAXMEMORY_POLICIES,
            ("A2A_QUEUE_OPTIONS", "maxmemory_policy"),
        ),
        Setting("A2A_QUEUE_CREDENTIALS_USERNAME", str, "", "a Redis ACL user name", map_key=("A2A_QUEUE_CREDENTIALS", "username")),
        Setting("A2A_QUEUE_CREDENTIALS_PASSWORD", str, "", "a Redis password", map_key=("A2A_QUEUE_CREDENTIALS", "password")),
        Setting("A2A_QUEUE_KEY_PREFIX", str.strip, "a2a", "letters, digits, ':', '_', '-', '{' and '}'", lambda v: bool(re.fullmatch(r"[\w:{}\-.]+", v))),
        Setting("A2A_QUEUE_RECONNECT_BACKOFF_MAX", parse_duration, "10s", "a duration such as 10s", _positive),
        Setting("A2A_DATA_DIR", str.strip, str(BASE_DIR / "var"), "a folder path (not a file, nor a path below one)", _folder_path),
        Setting("A2A_SERVER_HOST", str.strip, "127.0.0.1", "a host or address to listen on"),
        Setting("A2A_SERVER_PORT", int, "8080", "a TCP port from 1 to 65535", _int(1, 65535)),
        Setting("A2A_SERVER_MAX_CONNECTIONS", int, "1000", "a whole number of connections from 1 to 100000", _int(1, 100000)),
        Setting("A2A_SERVER_HEADER_TIMEOUT", parse_duration, "10s", "a duration such as 10s", _positive),
        Setting("A2A_SERVER_BODY_TIMEOUT", parse_duration, "30s", "a duration such as 30s", _positive),
        Setting("A2A_SERVER_ASGI", str.lower, "uvicorn", "'uvicorn' or 'daphne'", lambda v: v in ("uvicorn", "daphne")),
        Setting("A2A_GRPC_PORT", int, "50051", "a TCP port from 1 to 65535, or 0 to turn the gRPC server off", _int(0, 65535)),
        Setting("A2A_GRPC_PUBLIC_ADDRESS", str.strip, "", "host:port that gRPC clients use, such as agents.example.com:443", lambda v: v == "" or _host_port(v)),
        Setting("A2A_GRPC_TLS_CERT", str.strip, "", "the path of a PEM certificate chain (set with A2A_GRPC_TLS_KEY)"),
        Setting("A2A_GRPC_TLS_KEY", str.strip, "", "the path of the PEM private key of A2A_GRPC_TLS_CERT"),
        Setting(
            "A2A_PUBLIC_URL",
            str.strip,
            "",
            "the base URL clients use: http:// or https://, a host and an optional path, such as https://agents.example.com",
            _base_url,
        ),
        Setting("A2A_DEBUG", parse_bool, "false", "true or false"),
        Setting("A2A_SECRET_KEY", str.strip, "", "a long random string (unset: one is generated and kept in A2A_DATA_DIR)"),
        Setting("A2A_ALLOWED_HOSTS", parse_list, "", "host names separated by commas, or * (unset: the localhost names and the host of A2A_PUBLIC_URL)"),
        Setting("A2A_EMAIL_URL", str.strip, "", "smtp://user:password@host:port, smtp+tls:// (STARTTLS), smtps:// (TLS) or file:///folder", _email_url),
        Setting("A2A_EMAIL_FROM", str.strip, "", "the sender address of mails such as password resets"),
        Setting("A2A_AGENT", str.strip, "echo", "a built-in agent (echo, demo, conformance, llm, noop) or a dotted path to an Agent class", bool),
        Setting("A2A_AGENT_NAME", str.strip, "A2A Redis Queue Agent", "a non-empty name", bool),
        Setting("A2A_AGENT_DESCRIPTION", str.strip, "An A2A agent whose tasks are queued, processed and kept in Redis.", "a non-empty description", bool),
        Setting("A2A_AGENT_VERSION", str.strip, "1.0.0", "a non-empty version", bool),
        Setting("A2A_EMBEDDED_WORKERS", int, "1", "a whole number of workers from 0 to 64", _int(0, 64)),
        Setting("A2A_WORKER_CONCURRENCY", int, "10", "a whole number of tasks from 1 to 1000", _int(1, 1000)),
        Setting("A2A_WORKER_LEASE", parse_duration, "30s", "a duration of 1s or more, such as 30s", lambda v: v >= 1),
        Setting("A2A_WORKER_HEARTBEAT_INTERVAL", parse_duration, "500ms", "a duration shorter than A2A_WORKER_LEASE", _positive),
        Setting("A2A_WORKER_MAX_ATTEMPTS", int, "3", "a whole number of attempts, 1 or more", _int(1)),
        Setting("A2A_WORKER_SHUTDOWN_GRACE", parse_duration, "25s", "a duration such as 25s", lambda v: v >= 0),
        Setting("A2A_TASK_TIMEOUT", parse_duration, "10m", "a duration such as 10m", _positive),
        Setting("A2A_QUEUE_CLEANUP_INTERVAL", parse_duration, "120s", "a duration such as 120s", _positive),
        Setting("A2A_TASK_RETENTION_MAX_COMPLETED_TASKS", int, "100", "a whole number, 0 or more", _int(0)),
        Setting("A2A_TASK_RETENTION_MAX_FAILED_TASKS", int, "50", "a whole number, 0 or more", _int(0)),
        Setting("A2A_TASK_RETENTION_CLEANUP_INTERVAL", parse_duration, "5m", "a duration such as 5m", _positive),
        Setting("A2A_TASK_RETENTION_MAX_AGE", parse_duration, "168h", "a duration such as 168h", _positive),
        Setting("A2A_IDEMPOTENCY_TTL", parse_duration, "24h", "a duration such as 24h", _positive),
        Setting("A2A_EVENTS_TTL", parse_duration, "10m", "a duration such as 10m", _positive),
        Setting("A2A_QUEUE_REPLICA_ACKS", int, "0", "a whole number of replicas, 0 or more (0: do not wait)", _int(0)),
        Setting("A2A_CAPABILITIES_STREAMING", parse_bool, "true", "true or false"),
        Setting("A2A_CAPABILITIES_PUSH_NOTIFICATIONS", parse_bool, "true", "true or false"),
        Setting("A2A_CAPABILITIES_STATE_TRANSITION_HISTORY", parse_bool, "false", "true or false"),
        Setting("A2A_MAX_BODY_BYTES", int, "1048576", "a whole number of bytes from 1024 to 1073741824", _int(1024, 1 << 30)),
        Setting("A2A_MAX_PARTS", int, "100", "a whole number of parts per message from 1 to 10000", _int(1, 10000)),
        Setting("A2A_MAX_ID_LENGTH", int, "256", "a whole number of characters from 36 to 65536", _int(36, 65536)),
        Setting("A2A_MAX_HISTORY_LENGTH", int, "100", "a whole number of messages from 1 to 10000", _int(1, 10000)),
        Setting("A2A_BLOCKING_TIMEOUT", parse_duration, "60s", "a duration such as 60s", _positive),
        Setting("A2A_CANCEL_WAIT", parse_duration, "5s", "a duration such as 5s", _positive),
        Setting("A2A_SSE_KEEPALIVE", parse_duration, "15s", "a duration such as 15s", _positive),
        Setting("A2A_CARD_MAX_AGE", parse_duration, "5m", "a duration such as 5m", lambda v: v >= 0),
        Setting("A2A_AUTH_TOKENS", parse_list, "", "bearer tokens separated by commas, each optionally named: alice:token1,bob:token2"),
        Setting("A2A_AUTH_API_KEYS", parse_list, "", "API keys (header X-API-Key) separated by commas, each optionally named: ci:key1"),
        Setting("A2A_AUTH_OIDC_ISSUER", str.strip, "", "the issuer URL of an OpenID Connect provider, https:// (http:// only on a loopback host)", _issuer_url),
        Setting("A2A_AUTH_OIDC_AUDIENCE", parse_list, "", "the audiences (aud) a token may be for, separated by commas; required with A2A_AUTH_OIDC_ISSUER"),
        Setting("A2A_AUTH_OIDC_IDENTITY_CLAIM", str.strip, "sub", "the name of the token claim that names the caller, such as sub or email", bool),
        Setting("A2A_AUTH_OIDC_LEEWAY", parse_duration, "30s", "a duration from 0 to 5m, such as 30s", lambda v: 0 <= v <= 300),
        Setting("A2A_AUTH_OIDC_JWKS_TTL", parse_duration, "10m", "a duration such as 10m", _positive),
        Setting("A2A_AUTH_OIDC_REFETCH_INTERVAL", parse_duration, "30s", "a duration such as 30s", lambda v: v >= 0),
        Setting("A2A_AUTH_OIDC_TIMEOUT", parse_duration, "5s", "a duration from 100ms to 60s, such as 5s", lambda v: 0.1 <= v <= 60),
        Setting("A2A_AUTH_ADMIN_IDENTITIES", parse_list, "", "identities that see and act on every task, separated by commas: ops,alice"),
        Setting("A2A_DASHBOARD_MAX_FPS", float, "10", "renders per second per browser, from 0.2 to 60", lambda v: 0.2 <= v <= 60),
        Setting("A2A_DASHBOARD_READ_ONLY", parse_bool, "false", "true or false"),
        Setting("A2A_DASHBOARD_PUBLIC", parse_bool, "false", "true or false"),
        Setting("A2A_DASHBOARD_ADMIN_PASSWORD", str, "", "the password of the admin user created on first start (unset: one is generated and printed once)"),
        Setting("A2A_DASHBOARD_SEARCH_SCAN", int, "2000", "a whole number of history tasks one search request reads, from 100 to 100000", _int(100, 100000)),
        Setting("A2A_METRICS_TOKEN", str.strip, "", "a bearer token for GET /metrics (unset: /metrics is open)"),
        Setting("A2A_PUSH_ALLOW_PRIVATE", parse_bool, "false", "true or false"),
        Setting("A2A_PUSH_MAX_ATTEMPTS", int, "5", "a whole number of attempts from 1 to 20", _int(1, 20)),
        Setting("A2A_PUSH_TIMEOUT", parse_duration, "5s", "a duration such as 5s", _positive),
        Setting("A2A_PUSH_BACKOFF", parse_duration, "500ms", "a duration such as 500ms", _positive),
        Setting("A2A_CONFORMANCE_RESUBSCRIBE_DELAY", parse_duration, "3s", "a duration such as 3s", lambda v: v >= 0),
        Setting("A2A_AGENT_CLIENT_BASE_URL", str.strip, "https://api.openai.com/v1", "an http(s) url of an OpenAI-compatible API", lambda v: v.startswith(("http://", "https://"))),
        Setting("A2A_AGENT_CLIENT_API_KEY", str.strip, "", "an API key (may be empty for local endpoints)"),
        Setting("A2A_AGENT_CLIENT_MODEL", str.strip, "gpt-4o-mini", "a model name", bool),
        Setting("A2A_AGENT_CLIENT_MAX_HISTORY", int, "20", "a whole number of messages, 0 or more", _int(0)),
    ]
}


class Config(SettingFields):
    """The validated settings, one typed field per :class:`Setting`.

    Each field is named after its variable without ``A2A_``, lower-cased:
    ``A2A_WORKER_LEASE`` is ``config.worker_lease``, a float of seconds. The fields are
    generated from :data:`SETTINGS` into ``config_fields.py`` (``python -m queueapp.config_gen``).

    The dataclass is :class:`SettingFields` (frozen, slotted, compared and hashed by
    identity, so the caches keyed on a Config need not hash every field on each request);
    this subclass only adds methods. Decorating it again would build the eighty-field
    ``__init__`` a second time, 2 ms of every process's start.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        names = (field.name for field in dataclasses.fields(self))
        shown = {k: ("***" if "password" in k or "token" in k or "key" in k and "prefix" not in k or k == "email_url" else getattr(self, k)) for k in names}
        return f"Config({shown})"

    @property
    def storage_kind(self) -> str:
        """``redis`` for a configured URL, ``embedded`` when none is set, ``memory`` for fakeredis."""
        if self.queue_provider == "memory":
            return "memory"
        return "redis" if self.queue_url else "embedded"

    def local_url(self, wildcard_host: str = "127.0.0.1") -> str:
        """The base URL of this machine's ``serve``: ``A2A_PUBLIC_URL``, else its host and port.

        A wildcard listen address (``0.0.0.0``, ``::``) is reached as ``wildcard_host``.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        host = self.server_host
        if host in ("0.0.0.0", "::", ""):
            host = wildcard_host
        elif ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}"

    def replace(self, **changes: Any) -> Config:
        unknown = set(changes) - {field.name for field in dataclasses.fields(self)}
        if unknown:
            raise TypeError(f"unknown settings {sorted(unknown)}")
        return dataclasses.replace(self, **changes)


ENV_FILE_VARIABLE = "A2A_ENV_FILE"  # names the file of settings to read instead of .env (not a setting itself)


def load_env_file(path: Path | None = None) -> dict[str, str]:
    """Values from a ``.env`` file, if there is one. The process environment wins over it.

    A file that A2A_ENV_FILE names must be there: a typo in its path would otherwise start the
    process on the defaults without a word.
    """
    from dotenv import dotenv_values

    named = os.environ.get(ENV_FILE_VARIABLE) if path is None else None
    env_file = path or (Path(named) if named else BASE_DIR / ".env")
    if named and not env_file.exists():  # exists, not is_file: /dev/null names no settings
        raise ConfigError(f"{ENV_FILE_VARIABLE}={named!r} is invalid: expected the path of a file of settings, and there is no such file")
    if not (named or env_file.is_file()):
        return {}
    return {k: v for k, v in dotenv_values(env_file).items() if v is not None}


def _read_maps(environ: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The map forms A2A_QUEUE_OPTIONS and A2A_QUEUE_CREDENTIALS, with their keys checked."""
    known = {s.map_key for s in SETTINGS.values() if s.map_key}
    maps: dict[str, dict[str, str]] = {}
    for map_var in ("A2A_QUEUE_OPTIONS", "A2A_QUEUE_CREDENTIALS"):
        try:
            maps[map_var] = parse_map(environ.get(map_var, ""))
        except ValueError as exc:
            raise ConfigError(f"{map_var}={environ[map_var]!r} is invalid: expected key:value pairs separated by commas, near {exc}") from None
        for key in maps[map_var]:
            if (map_var, key) not in known:
                accepted = sorted(k for m, k in known if m == map_var)
                raise ConfigError(f"{map_var} has an unknown key {key!r}: expected {', '.join(accepted)}")
    return maps


def _read_setting(setting: Setting, environ: Mapping[str, str], maps: dict[str, dict[str, str]]) -> Any:
    """One setting's value: its own variable wins over the map form, which wins over the default."""
    raw = environ.get(setting.env)
    source = setting.env
    if raw is None and setting.map_key:
        map_var, key = setting.map_key
        if key in maps[map_var]:
            raw, source = maps[map_var][key], f"{map_var} ({key})"
    if raw is None or (raw.strip() == "" and setting.default == ""):
        raw = setting.default
    if raw == "" and setting.unset_is_none:
        return None
    try:
        value = setting.parse(raw)
        ok = setting.check(value)
    except ValueError:
        ok = False
    if not ok:
        shown = redact_url(raw) if "://" in raw else raw  # a URL's password is never printed
        raise ConfigError(f"{source}={shown!r} is invalid: expected {setting.accepts}")
    return value


def load(environ: Mapping[str, str] | None = None) -> Config:
    """Build the :class:`Config` from the environment (plus ``.env``), or raise :class:`ConfigError`."""
    if environ is None:
        environ = {**load_env_file(), **os.environ}
    maps = _read_maps(environ)
    values = {setting.name: _read_setting(setting, environ, maps) for setting in SETTINGS.values()}

    if values["worker_heartbeat_interval"] >= values["worker_lease"]:
        raise ConfigError(
            f"A2A_WORKER_HEARTBEAT_INTERVAL={environ.get('A2A_WORKER_HEARTBEAT_INTERVAL', '500ms')!r} is invalid: expected a duration shorter than A2A_WORKER_LEASE"
        )
    if not values["allowed_hosts"]:
        values["allowed_hosts"] = default_allowed_hosts(values["public_url"], values["server_host"])
    if values["auth_oidc_issuer"] and not values["auth_oidc_audience"]:
        raise ConfigError("A2A_AUTH_OIDC_AUDIENCE is required when A2A_AUTH_OIDC_ISSUER is set: expected the audiences (aud) a token may be for")
    if bool(values["grpc_tls_cert"]) != bool(values["grpc_tls_key"]):
        raise ConfigError("A2A_GRPC_TLS_CERT and A2A_GRPC_TLS_KEY go together: set both for gRPC over TLS, or neither for plaintext")
    for variable, what, prefix in (("A2A_AUTH_TOKENS", "token", "token"), ("A2A_AUTH_API_KEYS", "API key", "key")):
        shared = _shared_secret(variable, values[variable.removeprefix("A2A_").lower()], prefix, what)
        if shared:
            raise ConfigError(shared)
    from queueapp.ha import url_problem

    problem = url_problem(values["queue_url"], values["queue_key_prefix"], values["queue_options_db"], values["queue_replica_acks"], SETTINGS["A2A_QUEUE_URL"].accepts)
    if problem:
        raise ConfigError(problem)

    return Config(**values)


_current: Config | None = None


def get() -> Config:
    """The process-wide configuration, loaded on first use."""
    global _current
    if _current is None:
        _current = load()
    return _current


def loaded() -> Config | None:
    """The process-wide configuration if one was loaded or set, without loading it."""
    return _current


def set_current(config: Config | None) -> None:
    """Replace the process-wide configuration (tests and commands that take overrides)."""
    global _current
    _current = config
