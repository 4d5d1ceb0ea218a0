"""Configuration: every bad value stops start-up with one line naming the variable."""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing

import pytest

from queueapp import config as config_module
from queueapp import config_gen, startup
from queueapp.config import SETTINGS, Config, ConfigError, Setting, load, load_env_file, parse_duration

BAD_VALUES = [
    ("A2A_QUEUE_PROVIDER", "postgres"),
    ("A2A_QUEUE_URL", "http://localhost:6379"),
    ("A2A_QUEUE_OPTIONS_DB", "16"),
    ("A2A_QUEUE_OPTIONS_DB", "first"),
    ("A2A_QUEUE_OPTIONS_MAX_RETRIES", "-1"),
    ("A2A_QUEUE_OPTIONS_TIMEOUT", "5 parsecs"),
    ("A2A_QUEUE_OPTIONS_TIMEOUT", "0s"),
    ("A2A_QUEUE_OPTIONS_MAXMEMORY_POLICY", "evict-everything"),
    ("A2A_QUEUE_KEY_PREFIX", "a2a queue"),
    ("A2A_QUEUE_RECONNECT_BACKOFF_MAX", "soon"),
    ("A2A_SERVER_PORT", "70000"),
    ("A2A_SERVER_PORT", "http"),
    ("A2A_SERVER_ASGI", "gunicorn"),
    ("A2A_DEBUG", "maybe"),
    ("A2A_AGENT", " "),
    ("A2A_AGENT_NAME", " "),
    ("A2A_AGENT_DESCRIPTION", " "),
    ("A2A_AGENT_VERSION", " "),
    ("A2A_EMBEDDED_WORKERS", "-1"),
    ("A2A_WORKER_CONCURRENCY", "0"),
    ("A2A_WORKER_LEASE", "500ms"),
    ("A2A_WORKER_HEARTBEAT_INTERVAL", "often"),
    ("A2A_WORKER_MAX_ATTEMPTS", "0"),
    ("A2A_WORKER_SHUTDOWN_GRACE", "-5s"),
    ("A2A_TASK_TIMEOUT", "0"),
    ("A2A_QUEUE_CLEANUP_INTERVAL", "2 minutes"),
    ("A2A_TASK_RETENTION_MAX_COMPLETED_TASKS", "-3"),
    ("A2A_TASK_RETENTION_MAX_FAILED_TASKS", "many"),
    ("A2A_TASK_RETENTION_CLEANUP_INTERVAL", "0s"),
    ("A2A_TASK_RETENTION_MAX_AGE", "1y"),
    ("A2A_IDEMPOTENCY_TTL", "a day"),
    ("A2A_EVENTS_TTL", "-"),
    ("A2A_PUBLIC_URL", "notaurl"),
    ("A2A_PUBLIC_URL", "agents.example.com"),
    ("A2A_PUBLIC_URL", "ftp://agents.example.com"),
    ("A2A_PUBLIC_URL", "https://"),
    ("A2A_PUBLIC_URL", "https://agents.example.com:port"),
    ("A2A_PUBLIC_URL", "https://agents.example.com/?tenant=1"),
]


def test_defaults_are_valid():
    cfg = load({})
    assert cfg.queue_provider == "redis" and cfg.storage_kind == "embedded"
    assert cfg.server_port == 8080 and cfg.debug is False
    assert cfg.queue_options_max_retries == 3 and cfg.queue_options_timeout == 5.0
    assert cfg.queue_cleanup_interval == 120 and cfg.task_retention_cleanup_interval == 300
    assert cfg.task_retention_max_completed_tasks == 100 and cfg.task_retention_max_failed_tasks == 50
    assert cfg.agent == "echo" and cfg.embedded_workers == 1 and cfg.queue_key_prefix == "a2a"
    assert cfg.agent_name and cfg.agent_description and cfg.agent_version


@pytest.mark.parametrize(("variable", "value"), BAD_VALUES)
def test_bad_value_names_the_variable_and_what_it_accepts(variable, value):
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    message = str(info.value)
    assert message.startswith(f"{variable}={value!r} is invalid: expected ")
    assert "\n" not in message


@pytest.mark.parametrize("variable", sorted(config_module.SETTINGS))
def test_every_setting_rejects_junk_with_its_one_line_error(variable):
    """Whatever setting exists now, a value it refuses is reported in the same one-line form."""
    refused = 0
    for junk in ("-1", "not a value!", "99999999999", "0", " "):
        try:
            load({variable: junk})
        except ConfigError as exc:
            refused += 1
            assert str(exc).startswith(f"{variable}={junk!r} is invalid: expected ") or variable in str(exc)
            assert "\n" not in str(exc)
    if variable in {name for name, _ in BAD_VALUES}:
        assert refused, f"{variable} accepted every junk value"


def test_heartbeat_must_be_shorter_than_the_lease():
    with pytest.raises(ConfigError, match=r"^A2A_WORKER_HEARTBEAT_INTERVAL='5s' is invalid: expected a duration shorter than A2A_WORKER_LEASE"):
        load({"A2A_WORKER_LEASE": "5s", "A2A_WORKER_HEARTBEAT_INTERVAL": "5s"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5s", 5), ("500ms", 0.5), ("2m", 120), ("1h30m", 5400), ("1.5s", 1.5), ("250us", 0.00025), ("7", 7)],
)
def test_go_style_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "5x", "5s3", "-1s", "five seconds"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_options_and_credentials_map_forms():
    cfg = load({"A2A_QUEUE_OPTIONS": "db:2, max_retries:5,timeout:500ms,maxmemory_policy:noeviction", "A2A_QUEUE_CREDENTIALS": "username:u,password:p:w"})
    assert cfg.queue_options_db == 2
    assert cfg.queue_options_max_retries == 5
    assert cfg.queue_options_timeout == 0.5
    assert cfg.queue_options_maxmemory_policy == "noeviction"
    assert cfg.queue_credentials_username == "u"
    assert cfg.queue_credentials_password == "p:w"


def test_single_variables_win_over_the_map_form():
    cfg = load(
        {
            "A2A_QUEUE_OPTIONS": "db:2,timeout:1s",
            "A2A_QUEUE_OPTIONS_DB": "3",
            "A2A_QUEUE_CREDENTIALS": "username:from-map,password:map-secret",
            "A2A_QUEUE_CREDENTIALS_PASSWORD": "single-secret",
        }
    )
    assert cfg.queue_options_db == 3 and cfg.queue_options_timeout == 1.0
    assert cfg.queue_credentials_username == "from-map" and cfg.queue_credentials_password == "single-secret"


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"A2A_QUEUE_OPTIONS": "db2"}, r"^A2A_QUEUE_OPTIONS='db2' is invalid: expected key:value pairs"),
        ({"A2A_QUEUE_OPTIONS": "colour:blue"}, r"^A2A_QUEUE_OPTIONS has an unknown key 'colour': expected db, max_retries, maxmemory_policy, timeout"),
        ({"A2A_QUEUE_OPTIONS": "db:99"}, r"^A2A_QUEUE_OPTIONS \(db\)='99' is invalid: expected a database number"),
        ({"A2A_QUEUE_CREDENTIALS": "user:x"}, r"^A2A_QUEUE_CREDENTIALS has an unknown key 'user': expected password, username"),
    ],
)
def test_bad_map_forms(environ, expected):
    with pytest.raises(ConfigError, match=expected):
        load(environ)


def test_env_file_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("A2A_SERVER_PORT=9191\nA2A_AGENT=demo\n# a comment\nA2A_WORKER_CONCURRENCY=4\n")
    assert load_env_file(env_file)["A2A_AGENT"] == "demo"
    for name in list(config_module.SETTINGS) + ["A2A_QUEUE_OPTIONS", "A2A_QUEUE_CREDENTIALS"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("A2A_ENV_FILE", str(env_file))
    monkeypatch.setenv("A2A_WORKER_CONCURRENCY", "7")
    cfg = load()
    assert cfg.server_port == 9191 and cfg.agent == "demo"
    assert cfg.worker_concurrency == 7


def test_bad_value_in_env_file_is_reported(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("A2A_SERVER_PORT=eighty\n")
    monkeypatch.delenv("A2A_SERVER_PORT", raising=False)
    monkeypatch.setenv("A2A_ENV_FILE", str(env_file))
    with pytest.raises(ConfigError, match="^A2A_SERVER_PORT='eighty' is invalid"):
        load()


def test_storage_kind_and_replace():
    assert load({"A2A_QUEUE_PROVIDER": "MEMORY"}).storage_kind == "memory"
    cfg = load({"A2A_QUEUE_URL": "rediss://user:pass@example.com:6380/2"})
    assert cfg.storage_kind == "redis"
    assert cfg.replace(worker_concurrency=2).worker_concurrency == 2
    with pytest.raises(TypeError):
        cfg.replace(no_such_setting=1)
    assert "pass@" not in repr(load({"A2A_QUEUE_CREDENTIALS_PASSWORD": "s3cret"})).replace("***", "")
    assert "s3cret" not in repr(load({"A2A_QUEUE_CREDENTIALS_PASSWORD": "s3cret"}))


def test_the_generated_fields_are_current():
    assert config_gen.TARGET.read_text() == config_gen.render(), "config_fields.py is stale: run python -m queueapp.config_gen"


def _holds(value: object, annotation: object) -> bool:
    """Whether ``value`` is exactly of the declared type (a bool is no int here)."""
    if typing.get_origin(annotation) is types.UnionType:
        return any(_holds(value, option) for option in typing.get_args(annotation))
    if typing.get_origin(annotation) is tuple:
        item = typing.get_args(annotation)[0]
        return type(value) is tuple and all(_holds(v, item) for v in value)
    return type(value) is annotation or (annotation is type(None) and value is None)


@pytest.mark.parametrize("environ", [{}, {"A2A_QUEUE_OPTIONS_DB": "3", "A2A_ALLOWED_HOSTS": "a.example,b.example", "A2A_AUTH_TOKENS": "t1"}])
def test_every_field_has_the_type_its_parser_returns(environ):
    declared = typing.get_type_hints(Config)
    cfg = load(environ)
    assert set(declared) == {setting.name for setting in SETTINGS.values()}
    for setting in SETTINGS.values():
        value = getattr(cfg, setting.name)
        assert _holds(value, declared[setting.name]), f"{setting.env} gives {value!r}, but Config.{setting.name} is declared {declared[setting.name]}"


def test_the_generator_refuses_a_parser_it_has_no_type_for():
    with pytest.raises(ValueError, match="A2A_ODD: no field type for its parser"):
        config_gen.field_type(Setting("A2A_ODD", lambda text: text, "", "anything"))


def test_the_config_is_frozen():
    cfg = load({})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.worker_lease = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("url", ["https://agents.example.com", "http://127.0.0.1:8080/", "https://example.com/agents/", "http://[::1]:8080"])
def test_public_url_takes_an_http_or_https_base_url(url):
    assert load({"A2A_PUBLIC_URL": url}).public_url == url


@pytest.mark.parametrize(("variable", "value", "shown"), [("A2A_EMAIL_URL", "smtp://mailer:pw-in-url@", "smtp://***@"), ("A2A_PUBLIC_URL", "https://admin:pw-in-url@", "https://***@")])
def test_a_bad_url_setting_is_printed_without_its_password(variable, value, shown):
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    assert str(info.value).startswith(f"{variable}={shown!r} is invalid: expected ") and "pw-in-url" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:notaport", "the port 'notaport' is not a number from 1 to 65535"),
        ("redis://127.0.0.1:99999", "the port '99999' is not a number from 1 to 65535"),
        ("redis://127.0.0.1:0/0", "the port '0' is not a number from 1 to 65535"),
        ("redis://[::1:6393", "the host is not valid (an IPv6 address goes in brackets: [::1]:6379)"),
        ("redis://127.0.0.1:6393?foo=bar", "a redis:// URL takes no query option 'foo': expected db, socket_timeout, "),
        ("redis://127.0.0.1:6393?socket_timeout=abc", "the query option socket_timeout='abc' is not a number of seconds above 0"),
        ("redis://127.0.0.1:6393?max_connections=0", "the query option max_connections='0' is not a whole number, 1 or more"),
        ("redis://127.0.0.1:6393?db=1&db=2", "the query option db is given twice"),
        ("redis://127.0.0.1:6393?ssl_ca_certs=/ca.pem", "the query option ssl_ca_certs is for TLS: use rediss:// instead of redis://"),
        ("rediss://127.0.0.1:6393?ssl_cert_reqs=maybe", "the query option ssl_cert_reqs='maybe' is not none, optional or required"),
        ("redis://", "the URL names no host"),
        ("redis:///0", "the URL names no host"),
        ("redis://127.0.0.1:6393/abc", "the database after the host must be a number, not 'abc'"),
        ("redis://127.0.0.1:6393/1/2", "the database after the host must be a number, not '1/2'"),
        ("unix://", "the URL names no socket path"),
        ("unix://run/redis.sock", "a unix:// URL names a socket path, not a host ('run')"),
        ("redis+sentinel://127.0.0.1:99999/mymaster", "the port of '127.0.0.1:99999' is not a number from 1 to 65535"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/0/1", "expected /mastername or /mastername/db after the hosts"),
        ("redis+sentinel://127.0.0.1:26379/mymaster?db=2", "a redis+sentinel:// URL takes no query option 'db'"),
        ("redis+cluster://127.0.0.1:7000,:7001", "':7001' is not host:port"),
        ("redis+cluster://127.0.0.1:7000?ssl_check_hostname=true", "the query option ssl_check_hostname is for TLS: use rediss+cluster:// instead of redis+cluster://"),
    ],
)
def test_a_malformed_queue_url_is_one_line_naming_the_variable(url, expected):
    with pytest.raises(ConfigError) as info:
        load({"A2A_QUEUE_URL": url, "A2A_QUEUE_KEY_PREFIX": "{a2a}"})
    assert str(info.value).startswith(f"A2A_QUEUE_URL={url!r} is invalid: {expected}")
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://app:pw-in-url@127.0.0.1:notaport/0",
        "redis+sentinel://:pw-in-url@127.0.0.1:99999/mymaster",
        "redis://app:pw-in-url@[::1:6379",
        "redis://127.0.0.1:6379/0?password=pw-in-url&foo=1",
        "unix://:pw-in-url@/run/redis.sock?foo=1",
        "http://app:pw-in-url@127.0.0.1:6379",
    ],
)
def test_a_malformed_queue_url_is_printed_without_its_password(url):
    with pytest.raises(ConfigError) as info:
        load({"A2A_QUEUE_URL": url})
    assert str(info.value).startswith("A2A_QUEUE_URL='") and "pw-in-url" not in str(info.value) and "***" in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379",
        "redis://cache.internal:6379/0",
        "redis://user:pass@127.0.0.1:6379/2",
        "redis://[::1]:6379/3",
        "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:6379/0?socket_timeout=2.5&socket_connect_timeout=1&socket_keepalive=true&health_check_interval=0&max_connections=50",
        "redis://127.0.0.1:6379/0?client_name=a2a&retry_on_timeout=no&db=4",
        "rediss://127.0.0.1:6380/0?ssl_ca_certs=/etc/ssl/ca.pem&ssl_certfile=/etc/ssl/a2a.crt&ssl_keyfile=/etc/ssl/a2a.key",
        "rediss://127.0.0.1:6380/0?ssl_cert_reqs=none&ssl_check_hostname=false",
        "unix:///run/redis/redis.sock",
        "unix:///run/redis/redis.sock?db=2&password=secret",
        "unix://user:secret@/run/redis/redis.sock",
        "redis+sentinel://u:p@10.0.0.1:26379,10.0.0.2,[::1]:26380/mymaster/2",
        "rediss+sentinel://10.0.0.1:26379/mymaster/0?ssl_ca_certs=/ca.pem&socket_timeout=2",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "rediss+cluster://n1:7000,n2:7001?ssl_ca_certs=/ca.pem&ssl_cert_reqs=required",
    ],
)
def test_every_documented_queue_url_form_is_accepted(url):
    assert load({"A2A_QUEUE_URL": url, "A2A_QUEUE_KEY_PREFIX": "{a2a}" if "cluster" in url else "a2a"}).queue_url == url


def test_the_query_options_of_sentinel_and_cluster_urls_reach_redis_py_as_values(make_config):
    from queueapp.connection import make_async_client  # builds the clients without connecting

    query = "?ssl_ca_certs=/ca.pem&socket_timeout=2&ssl_check_hostname=no&ssl_keyfile="
    sentinel = make_async_client(make_config(A2A_QUEUE_URL=f"rediss+sentinel://127.0.0.1:26379/mymaster/0{query}"))
    cluster = make_async_client(make_config(A2A_QUEUE_URL=f"rediss+cluster://127.0.0.1:7000{query}", A2A_QUEUE_KEY_PREFIX="{a2a}"))
    for options in (sentinel.connection_pool.connection_kwargs, sentinel.connection_pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs, cluster.get_connection_kwargs()):
        assert (options["socket_timeout"], options["ssl_check_hostname"], options["ssl_ca_certs"]) == (2.0, False, "/ca.pem")
        assert options.get("ssl_keyfile") is None  # an empty value is no value, as redis-py reads a redis:// URL


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("A2A_AUTH_TOKENS", "alice:tok-1,bob:tok-1", "A2A_AUTH_TOKENS is invalid: one token is given to two identities, alice and bob"),
        ("A2A_AUTH_TOKENS", "tok-1,carol:tok-2,tok-1", "A2A_AUTH_TOKENS is invalid: one token is given to two identities, token-1 and token-3"),
        ("A2A_AUTH_API_KEYS", "ci:tok-1,ops:tok-1", "A2A_AUTH_API_KEYS is invalid: one API key is given to two identities, ci and ops"),
    ],
)
def test_one_secret_for_two_identities_is_refused_without_printing_it(variable, value, expected):
    with pytest.raises(ConfigError) as info:
        load({variable: value})
    assert str(info.value).startswith(expected) and "tok-" not in str(info.value)


def test_the_same_secret_twice_for_one_identity_is_accepted():
    assert load({"A2A_AUTH_TOKENS": "alice:t1,alice:t1", "A2A_AUTH_API_KEYS": "k1"}).auth_tokens == ("alice:t1", "alice:t1")


def test_an_emptied_boolean_is_refused_not_taken_as_false():
    # A line of .env.example uncommented and left empty turned streaming off without a word.
    with pytest.raises(ConfigError, match=r"^A2A_CAPABILITIES_STREAMING='' is invalid: expected true or false$"):
        load({"A2A_CAPABILITIES_STREAMING": ""})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"server_port": 70000}, "A2A_SERVER_PORT=70000 (from the command line) is invalid: expected a TCP port from 1 to 65535"),
        ({"server_port": 0}, "A2A_SERVER_PORT=0 (from the command line) is invalid"),
        ({"grpc_port": -5}, "A2A_GRPC_PORT=-5 (from the command line) is invalid"),
        ({"embedded_workers": 100}, "A2A_EMBEDDED_WORKERS=100 (from the command line) is invalid: expected a whole number of workers from 0 to 64"),
        ({"worker_concurrency": 0}, "A2A_WORKER_CONCURRENCY=0 (from the command line) is invalid: expected a whole number of tasks from 1 to 1000"),
    ],
)
def test_command_line_options_are_held_to_what_their_variables_take(monkeypatch, override, message):
    # Before, `runworker --concurrency 0` registered a worker that never claimed, and
    # `serve --port 70000` ended in an OverflowError traceback.
    monkeypatch.setenv(config_module.ENV_FILE_VARIABLE, os.devnull)
    monkeypatch.setattr(config_module, "_current", config_module.loaded())  # load_config replaces it
    with pytest.raises(startup.StartError, match="^" + re.escape(message)):
        startup.load_config(**override)


def test_a_data_dir_that_cannot_be_a_folder_is_refused(tmp_path):
    # Before: a traceback (NotADirectoryError) from whichever command first wrote into it.
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    for path in (a_file, a_file / "below"):
        with pytest.raises(ConfigError, match=rf"^A2A_DATA_DIR='{re.escape(str(path))}' is invalid: expected a folder path \(not a file"):
            load({"A2A_DATA_DIR": str(path)})
    assert load({"A2A_DATA_DIR": str(tmp_path / "new" / "deeper")}).data_dir == str(tmp_path / "new" / "deeper")


@pytest.mark.parametrize(("env", "allowed"), [({}, ("localhost", "127.0.0.1", "[::1]", "10.1.2.3")), ({"A2A_ALLOWED_HOSTS": "a2a.internal"}, ("a2a.internal",))])
def test_serve_host_option_is_allowed_as_the_variable_would_be(monkeypatch, env, allowed):
    # Before, `serve --host 10.1.2.3` left the defaults of the variable's host: every A2A path
    # answered 400 to clients reaching the server at the address it was told to serve on.
    monkeypatch.setenv(config_module.ENV_FILE_VARIABLE, os.devnull)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(config_module, "_current", config_module.loaded())
    assert startup.load_config(server_host="10.1.2.3").allowed_hosts == allowed
