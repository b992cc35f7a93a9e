"""Tokens never reach logs, errors, audit details or command output."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from publisher import redact
from publisher.secrets import generate_key

# (text containing a secret, the secret)
SHAPED = [
    (
        "GET https://graph.facebook.com/v21.0/me/feed?access_token=EAAB0Zq8dK2mPz&fields=id",
        "EAAB0Zq8dK2mPz",
    ),
    (
        "POST https://api.telegram.org/bot123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0/sendMessage",
        "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
    ),
    (
        "token 123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0 refused",
        "AAHfiqksKZ8WmR2zSjiQ7_v4TMAKd",
    ),
    ("Authorization: Bearer ya29.a0AfH6SMBxTokenValue", "ya29.a0AfH6SMBxTokenValue"),
    ("headers={'Authorization': 'OAuth oauthtokenvalue77'}", "oauthtokenvalue77"),
    ("authorization=Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    ('{"access_token": "zalo-access-777777", "expires_in": "90000"}', "zalo-access-777777"),
    ("secret_key: zalo-app-secret-8888", "zalo-app-secret-8888"),
    ("X-Viber-Auth-Token: 445da6az1s345z78-dazcczb2542zv51a", "445da6az1s345z78"),
    ("refresh_token=def502refresh99&app_id=1", "def502refresh99"),
    ("page token EAAGm0PX4ZCpsBAKZCZAabcdefghijk12345 expired", "EAAGm0PX4ZCpsBAKZCZA"),
    ("bearer abcdefgh12345678 was refused", "abcdefgh12345678"),
    ("client_secret='cs-123456789'", "cs-123456789"),
    ("password=hunter2hunter2", "hunter2hunter2"),
    ("youtube ya29.c.b0Aaekm1Kxyz-abc refused", "ya29.c.b0Aaekm1Kxyz"),
]


@pytest.mark.parametrize(("text", "secret"), SHAPED)
def test_token_shapes_are_masked(text: str, secret: str) -> None:
    cleaned = redact.redact(text)
    assert secret not in cleaned
    assert redact.MASK in cleaned


@pytest.mark.parametrize(
    "text",
    [
        "token expired for account 01.facebook",
        "Nguồn: baochinhphu.vn — Thủ tướng chỉ đạo",
        "secret_key_id=k7ced656889a9674c",
        "https://baochinhphu.vn/thu-tuong-chi-dao-102241114.htm",
        "delivery 42 sent to 01.telegram as message 17",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert redact.redact(text) == text


def test_registered_values_are_masked_whatever_their_shape() -> None:
    redact.register_secret("plain-looking-words")
    redact.register_secret("abc")  # too short to register: would scrub ordinary text
    text = "sent with plain-looking-words to abc"
    assert redact.redact(text) == f"sent with {redact.MASK} to abc"


def test_a_secret_containing_another_is_masked_whole() -> None:
    redact.register_secret("outer-secret-inner-secret")
    redact.register_secret("inner-secret")
    assert redact.redact("x outer-secret-inner-secret y") == f"x {redact.MASK} y"


def test_structured_values_mask_secret_fields_and_strings() -> None:
    value = {
        "reason": "Telegram refused bot123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0",
        "headers": {"Authorization": "Bearer abcdefgh12345678", "Accept": "*/*"},
        "access_token": "short",
        "items": [{"token": "x"}, "ok"],
        "count": 3,
    }
    cleaned = redact.redact_value(value)
    assert cleaned["headers"]["Authorization"] == redact.MASK
    assert cleaned["headers"]["Accept"] == "*/*"
    assert cleaned["access_token"] == redact.MASK
    assert cleaned["items"] == [{"token": redact.MASK}, "ok"]
    assert cleaned["count"] == 3
    assert "AAHfiqks" not in str(cleaned)


@pytest.fixture
def installed_logging() -> Iterator[io.StringIO]:
    """The redactor installed on a root handler writing to a buffer; restored afterwards."""
    factory = logging.getLogRecordFactory()
    root = logging.getLogger()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.DEBUG)
    was_installed = redact._installed
    redact._installed = False
    redact.install()
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        logging.setLogRecordFactory(factory)
        redact._installed = was_installed


def test_log_records_are_scrubbed_anywhere_in_the_process(installed_logging: io.StringIO) -> None:
    redact.register_secret("registered-oa-token-5555")
    child = logging.getLogger("publisher.delivery.test")
    child.info("sending with %s", "registered-oa-token-5555")
    child.warning("GET %s failed", "https://graph.facebook.com/me?access_token=EAAB0Zq8dK2mPz")
    try:
        raise RuntimeError("bot123456789:AAHfiqksKZ8WmR2zSjiQ7_v4TMAKdiHm9T0 refused")
    except RuntimeError:
        child.exception("send failed")
    logging.getLogger("httpx").debug({"Authorization": "Bearer abcdefgh12345678"})
    out = installed_logging.getvalue()
    for secret in ("registered-oa-token-5555", "EAAB0Zq8dK2mPz", "AAHfiqks", "abcdefgh12345678"):
        assert secret not in out
    assert out.count(redact.MASK) >= 4
    assert "send failed" in out  # the message itself survives


def test_the_filter_alone_scrubs_a_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(redact.RedactingFilter())
    logger = logging.getLogger("publisher.redact.filter-test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        logger.error("token=%s", "abcdef-123456")
    finally:
        logger.removeHandler(handler)
    assert "abcdef-123456" not in stream.getvalue()
    assert "token=[redacted]" in stream.getvalue()


# --- the commands: grep everything they print for the secrets -----------------------------


class Commands:
    """Runs `publisher …` in this process through the real entry point (`main`)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
        self.monkeypatch, self.capsys = monkeypatch, capsys

    def __call__(self, home: Path, env: dict[str, str], *args: str, stdin: str = "") -> str:
        from publisher.cli import main

        with self.monkeypatch.context() as patch:
            for name in (
                "DATABASE_URL",
                "PUBLISHER_SECRET_KEY",
                "PUBLISHER_SECRET_KEY_FILE",
                "PUBLISHER_SANDBOX_URL",
            ):
                patch.delenv(name, raising=False)
            for name, value in {**env, "PUBLISHER_HOME": str(home)}.items():
                patch.setenv(name, value)
            patch.setattr(sys, "argv", ["publisher", *args])
            patch.setattr(sys, "stdin", io.StringIO(stdin))
            try:
                main()
                code = 0
            except SystemExit as done:
                code = int(done.code or 0)
        captured = self.capsys.readouterr()
        return f"rc={code}\n{captured.out}\n{captured.err}"


def test_commands_never_print_tokens_or_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run = Commands(monkeypatch, capsys)
    home = tmp_path / "home"
    assert run(home, {}, "init").startswith("rc=0")
    old_key, new_key = generate_key(), generate_key()
    sandbox = {"PUBLISHER_SANDBOX_URL": "http://127.0.0.1:9"}  # --as is honoured in the sandbox
    token = "EAAB-real-looking-page-token-0123456789"
    zalo = '{"token": "zalo-access-0123456789", "extra": {"secret_key": "zalo-app-secret-0123"}}'
    outputs = [
        run(
            home,
            {**sandbox, "PUBLISHER_SECRET_KEY": old_key},
            "accounts",
            "set-token",
            "01.facebook",
            "--as",
            "admin",
            stdin=token,
        ),
        run(
            home,
            {**sandbox, "PUBLISHER_SECRET_KEY": old_key},
            "accounts",
            "set-token",
            "01.zalo",
            "--as",
            "admin",
            stdin=zalo,
        ),
        # refusals: not an admin, unknown account, malformed secret
        run(
            home,
            {**sandbox, "PUBLISHER_SECRET_KEY": old_key},
            "accounts",
            "set-token",
            "01.viber",
            "--as",
            "bientap.hanoi",
            stdin=token,
        ),
        run(
            home,
            {**sandbox, "PUBLISHER_SECRET_KEY": old_key},
            "accounts",
            "set-token",
            "nowhere.x",
            "--as",
            "admin",
            stdin=token,
        ),
        run(
            home,
            {**sandbox, "PUBLISHER_SECRET_KEY": old_key},
            "accounts",
            "set-token",
            "01.viber",
            "--as",
            "admin",
            stdin='{"token": "' + token,
        ),
        run(home, {"PUBLISHER_SECRET_KEY": old_key}, "secrets", "check"),
        run(home, {"PUBLISHER_SECRET_KEY": f"{new_key},{old_key}"}, "secrets", "rotate"),
        run(home, {"PUBLISHER_SECRET_KEY": new_key}, "secrets", "check"),
        run(home, {"PUBLISHER_SECRET_KEY": old_key}, "secrets", "check"),  # old key: refused
        run(home, {"PUBLISHER_SECRET_KEY": "not-a-key-" + old_key[:20]}, "secrets", "check"),
        run(home, {"PUBLISHER_SECRET_KEY": new_key}, "--debug", "secrets", "check"),
    ]
    assert outputs[0].startswith("rc=0"), outputs[0]
    assert outputs[1].startswith("rc=0"), outputs[1]
    for refused in outputs[2:5]:
        assert refused.startswith("rc=2"), refused
    assert "not an admin" in outputs[2]
    assert outputs[6].startswith("rc=0")
    assert "2 secret(s) re-encrypted" in outputs[6]
    assert outputs[7].startswith("rc=0")
    assert outputs[8].startswith("rc=2")
    everything = "\n".join(outputs)
    for secret in (token, "zalo-access-0123456789", "zalo-app-secret-0123", old_key, new_key):
        assert secret not in everything
    assert old_key[:20] not in everything  # not even the malformed key's text
    database = b"".join(p.read_bytes() for p in home.glob("publisher.db*"))
    for secret in (token, "zalo-access-0123456789", "zalo-app-secret-0123", old_key, new_key):
        assert secret.encode() not in database
