"""Secrets at rest: encryption, key ring loading, rotation, credential resolution."""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sec_helpers import raw_database_bytes

from channels.base import Credentials, TokenSet
from publisher import audit
from publisher.domain import ChannelAccount, Platform
from publisher.secrets import (
    CredentialError,
    CredentialResolver,
    EncryptedTokenStore,
    Keyring,
    MasterKeyError,
    SecretsError,
    SecretStore,
    credentials_from_text,
    generate_key,
    load_keyring,
    parse_key,
    seal,
    unseal,
    write_key_file,
)
from publisher.store.tables import ChannelAccountRow

ACCOUNTS = ChannelAccountRow.__table__  # type: ignore[attr-defined]


def ring(*texts: str) -> Keyring:
    return Keyring.from_texts(list(texts), "test")


def token_for(account_id: str) -> str:
    # Long, distinctive and unguessable-looking, so a substring search means something.
    return f"EAAtok{account_id.replace('.', '')}Zq8d0{'x' * 40}"


# --- sealing ------------------------------------------------------------------------------


def test_seal_round_trip_and_fresh_nonce_every_time() -> None:
    keys = ring(generate_key())
    key_id, first = seal(keys, "01.facebook", b"secret-value")
    _, second = seal(keys, "01.facebook", b"secret-value")
    assert first != second  # a fresh nonce each time: equal tokens do not look equal
    assert unseal(keys, "01.facebook", key_id, first) == b"secret-value"
    assert b"secret-value" not in first.encode()


def test_a_ciphertext_moved_to_another_account_does_not_open() -> None:
    keys = ring(generate_key())
    key_id, sealed = seal(keys, "01.facebook", b"hanoi-token")
    with pytest.raises(SecretsError, match=r"79\.facebook"):
        unseal(keys, "79.facebook", key_id, sealed)


def test_a_relabelled_or_flipped_ciphertext_does_not_open() -> None:
    old, new = generate_key(), generate_key()
    keys = ring(new, old)
    key_id, sealed = seal(keys, "01.x", b"x-token")
    other_id = keys.keys[1].key_id
    with pytest.raises(SecretsError):
        unseal(keys, "01.x", other_id, sealed)  # claims to be under the other key
    raw = bytearray(base64.urlsafe_b64decode(sealed[3:]))
    for position in (0, len(raw) // 2, len(raw) - 1):  # nonce, body, tag
        flipped = raw.copy()
        flipped[position] ^= 0x01
        text = "v1." + base64.urlsafe_b64encode(bytes(flipped)).decode()
        with pytest.raises(SecretsError, match="does not open"):
            unseal(keys, "01.x", key_id, text)


def test_unknown_key_id_says_which_keys_exist_and_what_to_do() -> None:
    keys = ring(generate_key())
    with pytest.raises(SecretsError, match=r"not in the key ring.*secrets rotate"):
        unseal(keys, "01.x", "kdeadbeef", "v1.AAAA")


# --- master keys -------------------------------------------------------------------------


def test_key_from_environment_primary_first(tmp_path: Path) -> None:
    first, second = generate_key(), generate_key()
    keys = load_keyring({"PUBLISHER_SECRET_KEY": f"{first}, {second}"}, tmp_path)
    assert keys.primary == parse_key(first, "x")
    assert [k.key_id for k in keys.keys] == [parse_key(t, "x").key_id for t in (first, second)]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o004, 0o620])
def test_a_key_file_open_to_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "secret.key"
    write_key_file(path, generate_key())
    os.chmod(path, mode)
    with pytest.raises(MasterKeyError, match=r"group or others.*chmod 600"):
        load_keyring({}, tmp_path)
    with pytest.raises(MasterKeyError, match="group or others"):
        load_keyring({"PUBLISHER_SECRET_KEY_FILE": str(path)}, None)


def test_a_private_key_file_is_used_and_comments_skipped(tmp_path: Path) -> None:
    new, old = generate_key(), generate_key()
    path = tmp_path / "secret.key"
    write_key_file(path, f"# rotated 2026-11\n{new}\n\n{old}")
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)
    keys = load_keyring({}, tmp_path)
    assert [k.key_id for k in keys.keys] == [parse_key(new, "").key_id, parse_key(old, "").key_id]


def test_key_file_is_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "secret.key"
    write_key_file(path, generate_key())
    with pytest.raises(FileExistsError):
        write_key_file(path, generate_key())


def test_no_key_anywhere_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyError, match="PUBLISHER_SECRET_KEY"):
        load_keyring({}, tmp_path)


@pytest.mark.parametrize(
    "text", ["short", base64.urlsafe_b64encode(b"x" * 16).decode(), "!!!not-base64!!!" * 3]
)
def test_a_malformed_key_is_refused_without_echoing_it(text: str) -> None:
    with pytest.raises(MasterKeyError) as caught:
        load_keyring({"PUBLISHER_SECRET_KEY": text}, None)
    assert text not in str(caught.value)


def test_keys_never_show_in_repr() -> None:
    text = generate_key()
    keys = ring(text)
    assert text not in repr(keys)
    assert repr(keys.primary.material) not in repr(keys)


# --- the store and rotation ----------------------------------------------------------------


def test_stored_tokens_are_not_in_the_database_bytes(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, repository, path = sample_db
    store = SecretStore(engine, ring(generate_key()))
    account_ids = [a.id for a in repository.list_accounts()][:30]
    for account_id in account_ids:
        store.put(
            account_id, Credentials(token_for(account_id), {"secret_key": "zalo-app-secret-1"})
        )
    for account_id in account_ids:
        assert store.get(account_id) == Credentials(
            token_for(account_id), {"secret_key": "zalo-app-secret-1"}
        )
    engine.dispose()
    raw = raw_database_bytes(path)
    assert raw  # the file is there and was read
    for account_id in account_ids:
        assert token_for(account_id).encode() not in raw
    assert b"zalo-app-secret-1" not in raw


def test_rotation_leaves_no_plaintext_and_every_token_readable(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, repository, path = sample_db
    old, new = generate_key(), generate_key()
    account_ids = [a.id for a in repository.list_accounts()]
    assert len(account_ids) > 100
    old_store = SecretStore(engine, ring(old))
    for account_id in account_ids:
        old_store.put(account_id, Credentials(token_for(account_id)))

    report = SecretStore(engine, ring(new, old)).rotate(actor="os:test")
    assert (report.rotated, report.already_current) == (len(account_ids), 0)

    new_only = SecretStore(engine, ring(new))
    assert set(new_only.key_ids().values()) == {new_only.keyring.primary.key_id}
    for account_id in account_ids:
        assert new_only.get(account_id) == Credentials(token_for(account_id))
    with pytest.raises(SecretsError, match="not in the key ring"):
        SecretStore(engine, ring(old)).get(account_ids[0])

    again = SecretStore(engine, ring(new, old)).rotate()
    assert (again.rotated, again.already_current) == (0, len(account_ids))

    with engine.connect() as conn:
        events = audit.load(conn)
    assert [e.action for e in events] == ["secrets_rotated"]
    assert events[0].details["rotated"] == len(account_ids)
    engine.dispose()
    raw = raw_database_bytes(path)
    leaked = [a for a in account_ids if token_for(a).encode() in raw]
    assert leaked == []
    assert old.encode() not in raw
    assert new.encode() not in raw


def test_rotation_is_all_or_nothing(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, repository, _ = sample_db
    old, new, lost = generate_key(), generate_key(), generate_key()
    ids = [a.id for a in repository.list_accounts()][:5]
    for account_id in ids[:4]:
        SecretStore(engine, ring(old)).put(account_id, Credentials(token_for(account_id)))
    SecretStore(engine, ring(lost)).put(ids[4], Credentials(token_for(ids[4])))
    with pytest.raises(SecretsError, match=ids[4].replace(".", r"\.")):
        SecretStore(engine, ring(new, old)).rotate()
    # Nothing moved: the four old-key secrets still open with the old key alone.
    for account_id in ids[:4]:
        assert SecretStore(engine, ring(old)).get(account_id) == Credentials(token_for(account_id))


def test_put_refuses_an_unknown_account_and_audits_without_the_secret(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = sample_db
    store = SecretStore(engine, ring(generate_key()))
    with pytest.raises(SecretsError, match="no such channel account"):
        store.put("nowhere.facebook", Credentials("tok-123456789"))
    store.put("01.facebook", Credentials("tok-abcdefghijk"), actor="admin")
    with engine.connect() as conn:
        events = audit.load(conn)
    assert [(e.action, e.target, e.actor) for e in events] == [
        ("account_secret_set", "01.facebook", "admin")
    ]
    assert "tok-abcdefghijk" not in repr(events[0])
    assert audit.verify(events).ok


def test_a_store_without_a_key_says_so(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = sample_db
    with pytest.raises(MasterKeyError, match="no master key"):
        SecretStore(engine, None).put("01.facebook", Credentials("tok-123456789"))


# --- resolution ---------------------------------------------------------------------------


def account(ref: str, platform: Platform = Platform.FACEBOOK) -> ChannelAccount:
    return ChannelAccount(
        id=f"01.{platform.value}",
        unit_code="01",
        platform=platform,
        external_id="1234567",
        credentials_ref=ref,
    )


def test_env_reference() -> None:
    resolver = CredentialResolver(None, {"FB_01": "env-token-1234567"}, sandbox=False)
    assert resolver(account("env:FB_01")) == Credentials("env-token-1234567")
    with pytest.raises(CredentialError, match=r"01\.facebook.*FB_02 is not set"):
        resolver(account("env:FB_02"))


def test_file_reference_needs_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text('{"token": "file-token-123456", "extra": {"app_id": "42"}}\n')
    os.chmod(path, 0o600)
    resolver = CredentialResolver(None, {}, sandbox=False)
    assert resolver(account(f"file:{path}")) == Credentials("file-token-123456", {"app_id": "42"})
    os.chmod(path, 0o644)
    with pytest.raises(CredentialError, match="group or others") as caught:
        resolver(account(f"file:{path}"))
    assert "file-token-123456" not in str(caught.value)
    with pytest.raises(CredentialError, match="not found"):
        resolver(account(f"file:{tmp_path / 'missing'}"))


def test_store_reference_and_the_sandbox_fallback(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, repository, _ = sample_db
    store = SecretStore(engine, ring(generate_key()))
    stored, empty = repository.get_account("01.facebook"), repository.get_account("79.telegram")
    assert stored is not None
    assert empty is not None
    store.put(stored.id, Credentials("stored-token-1234567"))
    real = CredentialResolver(store, {}, sandbox=False)
    assert real(stored) == Credentials("stored-token-1234567")
    with pytest.raises(CredentialError, match=r"79\.telegram.*set-token 79\.telegram"):
        real(empty)
    sandbox = CredentialResolver(store, {"PUBLISHER_SANDBOX_URL": "http://127.0.0.1:8765"})
    assert sandbox(stored) == Credentials("stored-token-1234567")  # stored wins in the sandbox
    token = sandbox(empty).token
    assert "sandbox-79.telegram" in token
    assert ":" in token
    zalo = repository.get_account("01.zalo")
    assert zalo is not None
    fake = sandbox(zalo)
    assert fake.token.startswith(zalo.external_id + ".")
    assert "sandbox-01.zalo" in fake.token
    assert {"refresh_token", "app_id", "secret_key"} <= set(fake.extra)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("two\nlines", "one line"),
        ('{"token": 5}', "JSON secret"),
        ('{"token": "a", "extra": {"n": 1}}', "JSON secret"),
        ('{"token": "a", "other": "b"}', "JSON secret"),
        ('{"token": "abcdefgh-secret', "not valid JSON"),
    ],
)
def test_malformed_secrets_are_refused_without_echo(text: str, message: str) -> None:
    with pytest.raises(CredentialError, match=message) as caught:
        credentials_from_text(text, "stdin")
    assert "abcdefgh-secret" not in str(caught.value)


async def test_zalo_rotated_pair_is_kept_encrypted(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, _, path = sample_db
    store = SecretStore(engine, ring(generate_key()))
    store.put(
        "01.zalo", Credentials("first-access-tok", {"app_id": "42", "secret_key": "app-secret-zz"})
    )
    tokens = EncryptedTokenStore(store)
    first = await tokens.load("01.zalo")
    assert first is not None
    assert (first.refresh_token, first.expires_at) == (None, None)  # nothing renewable yet
    expires = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
    await tokens.save("01.zalo", TokenSet("second-access-tok", "refresh-tok-2222", expires))
    loaded = await tokens.load("01.zalo")
    assert loaded is not None
    assert (loaded.access_token, loaded.refresh_token) == ("second-access-tok", "refresh-tok-2222")
    assert loaded.expires_at == expires
    creds = store.get("01.zalo")
    assert creds is not None
    assert creds.extra["secret_key"] == "app-secret-zz"  # the app's extras are kept
    assert creds.extra["app_id"] == "42"
    with pytest.raises(ValueError, match="aware"):
        await tokens.save("01.zalo", TokenSet("a", "b", datetime(2026, 1, 1) + timedelta(0)))
    engine.dispose()
    raw = raw_database_bytes(path)
    assert b"refresh-tok-2222" not in raw
    assert b"second-access-tok" not in raw


def test_raw_column_holds_only_versioned_ciphertext(sample_db) -> None:  # type: ignore[no-untyped-def]
    engine, _, _ = sample_db
    store = SecretStore(engine, ring(generate_key()))
    store.put("CP.x", Credentials("x-bearer-token-999999"))
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(ACCOUNTS.c.secret_ciphertext, ACCOUNTS.c.secret_key_id).where(
                ACCOUNTS.c.id == "CP.x"
            )
        ).one()
    assert row.secret_ciphertext.startswith("v1.")
    assert row.secret_key_id == store.keyring.primary.key_id
    assert "x-bearer-token" not in row.secret_ciphertext
