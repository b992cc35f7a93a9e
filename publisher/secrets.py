"""Channel secrets at rest: encrypted in the database, the master key never in it.

- The master key comes from `PUBLISHER_SECRET_KEY` or from a key file (`PUBLISHER_SECRET_KEY_FILE`,
  else `<PUBLISHER_HOME>/secret.key`) that only its owner may read: a key file with any group
  or other permission bit is refused. A key ring may hold several keys (comma-separated in the
  variable, one per line in the file); the first is the primary that encrypts, the others only
  decrypt, which is what lets `publisher secrets rotate` move every secret to a new key.
- Each secret is sealed with AES-256-GCM under the key named by its row's `secret_key_id`, with
  a fresh 96-bit nonce, and the account id and key id as associated data: a ciphertext copied
  onto another account's row, or relabelled with another key id, fails to open
  (docs/decisions/secrets.md says why AES-GCM and not MultiFernet).
- `CredentialResolver` turns an account's reference (`env:VAR`, `file:/path`, `store:`) into
  `channels.base.Credentials` at send time. Errors name the account and the reference, never a
  secret value. Every value resolved is registered with `publisher.redact` so that it is
  scrubbed from logs and messages.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets as pysecrets
import stat
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from channels.base import Credentials, TokenSet
from publisher import audit, redact
from publisher.domain import ChannelAccount, Platform, canonical_json
from publisher.store.tables import ChannelAccountRow, table_of, utcnow

KEY_ENV = "PUBLISHER_SECRET_KEY"
KEY_FILE_ENV = "PUBLISHER_SECRET_KEY_FILE"
SANDBOX_ENV = "PUBLISHER_SANDBOX_URL"
DEFAULT_KEY_FILE_NAME = "secret.key"

_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # 96-bit nonces, random per encryption (NIST SP 800-38D §8.2.2)
_FORMAT = "v1"
_ACCOUNTS = table_of(ChannelAccountRow)


class SecretsError(Exception):
    """A secrets problem stated for a person; never contains a secret value."""


class MasterKeyError(SecretsError):
    """No usable master key (missing, malformed, or a key file with loose permissions)."""


class CredentialError(SecretsError):
    """An account's credentials cannot be resolved."""


# --- master keys ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MasterKey:
    key_id: str
    material: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"MasterKey({self.key_id}, <redacted>)"


def key_id_of(material: bytes) -> str:
    """A public name for a key: a domain-separated hash prefix (reveals nothing usable)."""
    return "k" + hashlib.sha256(b"publisher-master-key-id\x00" + material).hexdigest()[:16]


def generate_key() -> str:
    """A new master key as text (URL-safe base64 of 32 random bytes, like a Fernet key)."""
    return base64.urlsafe_b64encode(pysecrets.token_bytes(_KEY_BYTES)).decode("ascii")


def parse_key(text: str, where: str) -> MasterKey:
    """One key from its text. `where` names the origin for the error message only."""
    cleaned = text.strip()
    padded = cleaned + "=" * (-len(cleaned) % 4)
    try:
        material = base64.urlsafe_b64decode(padded.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise MasterKeyError(
            f"{where}: not a master key (expected URL-safe base64 of 32 bytes; "
            "make one with `publisher secrets new-key`)"
        ) from None
    if len(material) != _KEY_BYTES:
        raise MasterKeyError(
            f"{where}: a master key must be 32 bytes, this one is {len(material)} "
            "(make one with `publisher secrets new-key`)"
        )
    redact.register_secret(cleaned)
    return MasterKey(key_id_of(material), material)


@dataclass(frozen=True, slots=True)
class Keyring:
    """Master keys, primary first. The primary encrypts; every key may decrypt."""

    keys: tuple[MasterKey, ...]
    origin: str = ""

    def __post_init__(self) -> None:
        if not self.keys:
            raise MasterKeyError(f"{self.origin or 'key ring'}: no master key")

    @property
    def primary(self) -> MasterKey:
        return self.keys[0]

    def get(self, key_id: str) -> MasterKey | None:
        return next((k for k in self.keys if k.key_id == key_id), None)

    @classmethod
    def from_texts(cls, texts: list[str], origin: str) -> Keyring:
        keys: list[MasterKey] = []
        for number, text in enumerate(texts, start=1):
            key = parse_key(text, f"{origin} (key {number})")
            if all(k.key_id != key.key_id for k in keys):
                keys.append(key)
        return cls(tuple(keys), origin)


def _check_private_file(path: Path, what: str) -> os.stat_result:
    """Refuse a file that group or others can read, write or run: it is not private."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SecretsError(f"{path}: {what} not found") from None
    except OSError as error:
        raise SecretsError(f"{path}: cannot read the {what}: {error.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SecretsError(f"{path}: the {what} is not a regular file")
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose:
        raise SecretsError(
            f"{path}: the {what} is accessible to group or others "
            f"(mode {stat.S_IMODE(info.st_mode):04o}); run `chmod 600 {path}`"
        )
    return info


def read_key_file(path: Path) -> Keyring:
    try:
        _check_private_file(path, "master key file")
    except MasterKeyError:
        raise
    except SecretsError as error:
        raise MasterKeyError(str(error)) from None
    lines = [
        line.strip()
        for line in path.read_text(encoding="ascii", errors="replace").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise MasterKeyError(f"{path}: the master key file holds no key")
    return Keyring.from_texts(lines, str(path))


def load_keyring(env: Mapping[str, str], home: Path | None = None) -> Keyring:
    """The master key ring from the environment or a private key file — never the database.

    Order: `PUBLISHER_SECRET_KEY` (keys separated by commas, primary first), then the file named
    by `PUBLISHER_SECRET_KEY_FILE`, then `<home>/secret.key` when it exists.
    """
    inline = env.get(KEY_ENV, "").strip()
    if inline:
        texts = [t for t in inline.replace("\n", ",").split(",") if t.strip()]
        return Keyring.from_texts(texts, KEY_ENV)
    named = env.get(KEY_FILE_ENV, "").strip()
    if named:
        return read_key_file(Path(named))
    if home is not None and (home / DEFAULT_KEY_FILE_NAME).exists():
        return read_key_file(home / DEFAULT_KEY_FILE_NAME)
    where = f" or create {home / DEFAULT_KEY_FILE_NAME} (mode 600)" if home is not None else ""
    raise MasterKeyError(
        f"no master key: set {KEY_ENV} or {KEY_FILE_ENV}{where}; "
        "make a key with `publisher secrets new-key`"
    )


def write_key_file(path: Path, key_text: str) -> None:
    """Create a key file readable by its owner only (refuses to overwrite an existing one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(key_text.strip() + "\n")
    os.chmod(path, 0o600)  # whatever the umask did


# --- sealing ---------------------------------------------------------------------------------


def _associated_data(account_id: str, key_id: str) -> bytes:
    return f"publisher/channel_account/{_FORMAT}/{account_id}/{key_id}".encode()


def seal(keyring: Keyring, account_id: str, plaintext: bytes) -> tuple[str, str]:
    """(key id, ciphertext text) of `plaintext` under the primary key, bound to the account."""
    key = keyring.primary
    nonce = pysecrets.token_bytes(_NONCE_BYTES)
    sealed = AESGCM(key.material).encrypt(
        nonce, plaintext, _associated_data(account_id, key.key_id)
    )
    text = base64.urlsafe_b64encode(nonce + sealed).decode("ascii")
    return key.key_id, f"{_FORMAT}.{text}"


def unseal(keyring: Keyring, account_id: str, key_id: str, ciphertext: str) -> bytes:
    key = keyring.get(key_id)
    if key is None:
        raise SecretsError(
            f"account {account_id}: its secret was encrypted with key {key_id}, which is not "
            f"in the key ring ({', '.join(k.key_id for k in keyring.keys)}); add the old key "
            "after the new one and run `publisher secrets rotate`"
        )
    version, _, text = ciphertext.partition(".")
    try:
        if version != _FORMAT:
            raise ValueError(version)
        raw = base64.urlsafe_b64decode(text.encode("ascii"))
        if len(raw) < _NONCE_BYTES + 16:
            raise ValueError("short")
        return AESGCM(key.material).decrypt(
            raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated_data(account_id, key_id)
        )
    except (ValueError, binascii.Error, InvalidTag):
        raise SecretsError(
            f"account {account_id}: the stored secret does not open with key {key_id} "
            "(damaged, or copied from another account); set it again with "
            f"`publisher accounts set-token {account_id}`"
        ) from None


# --- what a secret holds ----------------------------------------------------------------------


def credentials_from_text(text: str, where: str) -> Credentials:
    """A secret as given by a person, a variable or a file.

    Plain text is the token. A JSON object with a string `token` (and optionally `extra`, an
    object of strings — e.g. Zalo's refresh_token, app_id, secret_key) carries more fields.
    google-auth's authorized-user JSON — what `python -m channels.youtube consent` prints,
    `{token, refresh_token, client_id, client_secret, token_uri, scopes, expiry, …}` — is
    accepted as it is (see `authorized_user_credentials`).
    """
    stripped = text.strip()
    if not stripped:
        raise CredentialError(f"{where}: empty secret")
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            raise CredentialError(f"{where}: starts with '{{' but is not valid JSON") from None
        if isinstance(data, dict) and "refresh_token" in data and "extra" not in data:
            credentials = authorized_user_credentials(data, where)
            remember(credentials)
            return credentials
        token = data.get("token") if isinstance(data, dict) else None
        extra = data.get("extra", {}) if isinstance(data, dict) else None
        if (
            not isinstance(token, str)
            or not token
            or not isinstance(extra, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in extra.items())
            or set(data) - {"token", "extra"}
        ):
            raise CredentialError(
                f'{where}: a JSON secret must be {{"token": "…", "extra": {{"name": "…"}}}} '
                "or google-auth's authorized-user JSON"
            )
        credentials = Credentials(token, dict(extra))
    elif any(ch in stripped for ch in "\r\n"):
        raise CredentialError(f"{where}: a token is one line (or a JSON object)")
    else:
        credentials = Credentials(stripped)
    remember(credentials)
    return credentials


# google-auth's authorized-user fields kept as extras (`expiry` becomes `expires_at`)
_AUTHORIZED_USER_EXTRAS = ("refresh_token", "client_id", "client_secret", "token_uri")
_AUTHORIZED_USER_IGNORED = frozenset(
    {"type", "universe_domain", "account", "quota_project_id", "rapt_token", "trust_boundary"}
)


def authorized_user_credentials(data: dict[str, Any], where: str) -> Credentials:
    """google-auth's authorized-user JSON (`Credentials.to_json()`, gcloud's
    `"type": "authorized_user"` file) as `Credentials`: the access token (empty when the file
    has none: the channel renews before first use), and `refresh_token`, `client_id`,
    `client_secret`, `token_uri`, `scopes` (space-separated) and `expires_at` (from `expiry`,
    which google-auth writes as naive UTC) as extras."""
    unknown = set(data) - {"token", "scopes", "expiry", *_AUTHORIZED_USER_EXTRAS}
    unknown -= _AUTHORIZED_USER_IGNORED
    if unknown:
        raise CredentialError(
            f"{where}: authorized-user JSON has unexpected fields {sorted(unknown)}"
        )
    missing = [
        name
        for name in ("refresh_token", "client_id", "client_secret")
        if not isinstance(data.get(name), str) or not data[name]
    ]
    if missing:
        raise CredentialError(
            f"{where}: authorized-user JSON is missing {', '.join(missing)} "
            "(run the consent again and store everything it prints)"
        )
    token = data.get("token") or ""
    if not isinstance(token, str):
        raise CredentialError(f"{where}: authorized-user JSON: token must be a string")
    extra = {
        name: str(data[name]) for name in _AUTHORIZED_USER_EXTRAS if isinstance(data.get(name), str)
    }
    scopes = data.get("scopes")
    if isinstance(scopes, str):
        scopes = scopes.split()
    if scopes is not None:
        if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
            raise CredentialError(f"{where}: authorized-user JSON: scopes must be a list")
        extra["scopes"] = " ".join(scopes)
    expiry = data.get("expiry")
    if expiry is not None:
        try:
            moment = datetime.fromisoformat(str(expiry).replace("Z", "+00:00"))
        except ValueError:
            raise CredentialError(
                f"{where}: authorized-user JSON: expiry {expiry!r} is not an ISO 8601 time"
            ) from None
        extra["expires_at"] = (
            moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        ).isoformat()
    return Credentials(token, extra)


def _serialise(credentials: Credentials) -> bytes:
    return canonical_json({"token": credentials.token, "extra": dict(credentials.extra)}).encode()


def _deserialise(raw: bytes, account_id: str) -> Credentials:
    try:
        data = json.loads(raw.decode("utf-8"))
        credentials = Credentials(
            str(data["token"]), {str(k): str(v) for k, v in data["extra"].items()}
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        raise SecretsError(
            f"account {account_id}: the stored secret is not in the expected form"
        ) from None
    remember(credentials)
    return credentials


def remember(credentials: Credentials) -> None:
    """Tell the redactor about every secret value, so it never reaches output."""
    redact.register_secret(credentials.token)
    for name, value in credentials.extra.items():
        if name not in _NOT_SECRET_EXTRAS:
            redact.register_secret(value)


# Not secrets, and redacting them would hide useful words from messages (a scope named in an
# error, the sandbox client id); OAuth client ids are public by design (RFC 6749 §2.2).
_NOT_SECRET_EXTRAS = frozenset({"expires_at", "app_id", "from", "client_id", "token_uri", "scopes"})


# --- the store ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RotationReport:
    key_id: str
    rotated: int  # re-encrypted under the primary key
    already_current: int  # were under the primary key already (opened to prove they still do)

    @property
    def total(self) -> int:
        return self.rotated + self.already_current


class SecretStore:
    """Encrypted secrets in the `channel_account` table (`secret_ciphertext`, `secret_key_id`)."""

    def __init__(self, engine: sa.Engine, keyring: Keyring | None) -> None:
        self.engine = engine
        self._keyring = keyring

    @property
    def keyring(self) -> Keyring:
        if self._keyring is None:
            raise MasterKeyError(
                f"no master key: set {KEY_ENV} or {KEY_FILE_ENV} to read or store secrets"
            )
        return self._keyring

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A write transaction (SQLite: BEGIN IMMEDIATE, as the audit chain requires)."""
        with self.engine.connect() as conn:
            if self.engine.dialect.name == "sqlite":
                conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                yield conn

    def _audit(
        self,
        conn: sa.Connection,
        actor: str | None,
        action: str,
        target: str,
        details: dict[str, Any],
    ) -> None:
        if actor is None:
            return
        audit.append(
            conn,
            self.engine.dialect.name == "sqlite",
            at=datetime.now(UTC),
            actor=actor,
            action=action,
            target=target,
            details=details,
        )

    def put(
        self,
        account_id: str,
        credentials: Credentials,
        *,
        actor: str | None = None,
        audit_details: Mapping[str, Any] | None = None,
    ) -> str:
        """Encrypt and store; returns the key id used. Unknown accounts are refused.

        With `actor`, an audit event (`account_secret_set`) is written in the same transaction;
        it names the key id, never the secret.
        """
        remember(credentials)
        key_id, ciphertext = seal(self.keyring, account_id, _serialise(credentials))
        with self._write() as conn:
            done = conn.execute(
                sa.update(_ACCOUNTS)
                .where(_ACCOUNTS.c.id == account_id)
                .values(secret_ciphertext=ciphertext, secret_key_id=key_id, updated_at=utcnow())
            )
            if done.rowcount != 1:
                raise SecretsError(f"account {account_id}: no such channel account")
            details = {**(audit_details or {}), "key_id": key_id}
            self._audit(conn, actor, "account_secret_set", account_id, details)
        return key_id

    def seal_for(self, account_id: str, credentials: Credentials) -> tuple[str, str]:
        """(key id, ciphertext) for `credentials` on this account's row, for a caller that
        writes the row itself in a larger transaction (`publisher.accounts`)."""
        remember(credentials)
        return seal(self.keyring, account_id, _serialise(credentials))

    def get(self, account_id: str) -> Credentials | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(_ACCOUNTS.c.secret_ciphertext, _ACCOUNTS.c.secret_key_id).where(
                    _ACCOUNTS.c.id == account_id
                )
            ).first()
        if row is None or row.secret_ciphertext is None:
            return None
        raw = unseal(self.keyring, account_id, row.secret_key_id or "", row.secret_ciphertext)
        return _deserialise(raw, account_id)

    def delete(self, account_id: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(
                sa.update(_ACCOUNTS)
                .where(_ACCOUNTS.c.id == account_id)
                .values(secret_ciphertext=None, secret_key_id=None, updated_at=utcnow())
            )
        return bool(done.rowcount)

    def key_ids(self) -> dict[str, str]:
        """Account id → the id of the key its secret is under (for `secrets check`)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_ACCOUNTS.c.id, _ACCOUNTS.c.secret_key_id).where(
                    _ACCOUNTS.c.secret_ciphertext.is_not(None)
                )
            )
            return {r.id: r.secret_key_id or "" for r in rows}

    def stored_account_ids(self) -> list[str]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(_ACCOUNTS.c.id)
                .where(_ACCOUNTS.c.secret_ciphertext.is_not(None))
                .order_by(_ACCOUNTS.c.id)
            )
            return [r.id for r in rows]

    def rotate(self, *, actor: str | None = None) -> RotationReport:
        """Re-encrypt every stored secret under the primary key, in one transaction.

        Every secret is opened first; if any does not open (its key is missing from the ring,
        or it is damaged) nothing is changed and the error names the account.
        """
        keyring = self.keyring
        primary = keyring.primary.key_id
        rotated = current = 0
        with self._write() as conn:
            rows = conn.execute(
                sa.select(_ACCOUNTS.c.id, _ACCOUNTS.c.secret_ciphertext, _ACCOUNTS.c.secret_key_id)
                .where(_ACCOUNTS.c.secret_ciphertext.is_not(None))
                .order_by(_ACCOUNTS.c.id)
            ).all()
            opened = [
                (
                    r.id,
                    r.secret_key_id,
                    unseal(keyring, r.id, r.secret_key_id or "", r.secret_ciphertext),
                )
                for r in rows
            ]
            for account_id, key_id, plaintext in opened:
                if key_id == primary:
                    current += 1
                    continue
                new_key_id, ciphertext = seal(keyring, account_id, plaintext)
                conn.execute(
                    sa.update(_ACCOUNTS)
                    .where(_ACCOUNTS.c.id == account_id)
                    .values(secret_ciphertext=ciphertext, secret_key_id=new_key_id)
                )
                rotated += 1
            self._audit(
                conn,
                actor,
                "secrets_rotated",
                "channel_account",
                {"key_id": primary, "rotated": rotated, "already_current": current},
            )
        return RotationReport(primary, rotated, current)


# --- resolution --------------------------------------------------------------------------------


def sandbox_credentials(account: ChannelAccount) -> Credentials:
    """The clearly-fake token used against the sandbox when nothing is stored.

    It contains `sandbox-<account id>`; its shape follows the sandbox's rules: the part before
    the first dot names the account (the external id), and Telegram bot tokens need
    `<bot id>:<secret>`. Never valid on a real platform.
    """
    if account.platform is Platform.TELEGRAM:
        return Credentials(f"1000000:sandbox-{account.id}")
    token = f"{account.external_id}.sandbox-{account.id}"
    extra: dict[str, str] = {}
    if account.platform in (Platform.YOUTUBE, Platform.X):
        # The strict YouTube and X emulators refuse any access token their token endpoints
        # did not mint: the channel renews from this fake refresh token, which the sandbox
        # takes as a consent to the default scopes.
        extra = {
            "refresh_token": f"{account.external_id}.sandbox-refresh-{account.id}",
            "client_id": f"sandbox-{account.platform.value}-client",
        }
        if account.platform is Platform.YOUTUBE:
            extra["client_secret"] = f"sandbox-secret-{account.id}"
    if account.platform is Platform.ZALO:
        # Zalo access tokens are minted by OAuth (the sandbox refuses a pre-made one): marked
        # expired, so the channel refreshes with the refresh token before its first request.
        extra = {
            "refresh_token": f"{account.external_id}.sandbox-refresh-{account.id}",
            "app_id": "sandbox-app",
            "secret_key": f"sandbox-secret-{account.id}",
            "expires_at": "2000-01-01T00:00:00+00:00",
        }
    return Credentials(token, extra)


def read_secret_file(path: Path) -> str:
    _check_private_file(path, "credentials file")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SecretsError(
            f"{path}: cannot read the credentials file ({type(error).__name__})"
        ) from None


class CredentialResolver:
    """`account → Credentials` for the worker: env:/file:/store:, sandbox fallback for store:.

    Callable, so it is a `publisher.delivery.worker.CredentialLookup`.
    """

    def __init__(
        self,
        store: SecretStore | None,
        env: Mapping[str, str] | None = None,
        *,
        sandbox: bool | None = None,
    ) -> None:
        self.store = store
        self.env = dict(os.environ if env is None else env)
        self.sandbox = bool(self.env.get(SANDBOX_ENV)) if sandbox is None else sandbox

    def __call__(self, account: ChannelAccount) -> Credentials:
        return self.resolve(account)

    def resolve(self, account: ChannelAccount) -> Credentials:
        reference = account.credentials_ref or "store:"
        where = f"account {account.id} ({reference})"
        try:
            if reference.startswith("env:"):
                name = reference[4:]
                value = self.env.get(name)
                if not value:
                    raise CredentialError(f"{where}: environment variable {name} is not set")
                return credentials_from_text(value, where)
            if reference.startswith("file:"):
                return credentials_from_text(read_secret_file(Path(reference[5:])), where)
            if reference == "store:":
                stored = self.store.get(account.id) if self.store is not None else None
                if stored is not None:
                    return stored
                if self.sandbox:
                    return sandbox_credentials(account)
                raise CredentialError(
                    f"{where}: no token stored; run `publisher accounts set-token {account.id}`"
                )
        except CredentialError:
            raise
        except SecretsError as error:
            raise CredentialError(f"{where}: {error}") from None
        raise CredentialError(f"{where}: unknown credentials reference (env:, file: or store:)")


# --- any channel's renewing tokens, kept encrypted ----------------------------------------------


class EncryptedTokenStore:
    """`channels.base.TokenStore` over the secret store, for every channel that renews tokens.

    The renewed access token replaces the stored `token`; the refresh token and expiry go in
    the extras (`refresh_token`, `expires_at`), and other extras (client id, app secret …) are
    kept. `load` returns None when nothing renewable is stored, so the channel falls back to
    the credentials it was given.

    Store before use (Zalo's single-use refresh tokens, channels/zalo.py): `save` returns only
    once `SecretStore.put` committed, and raises otherwise, so a channel never uses a rotated
    pair that is not on disk. A crash after Zalo rotated and before the commit leaves the old
    pair stored, which still refreshes under rotate-on-first-use; the analysis of the strict
    case is in the channel's docstring.
    """

    def __init__(self, store: SecretStore) -> None:
        self.store = store

    async def load(self, account_id: str) -> TokenSet | None:
        stored = self.store.get(account_id)
        if stored is None:
            return None
        expires: datetime | None = None
        raw = stored.extra.get("expires_at")
        if raw:
            try:
                expires = datetime.fromisoformat(raw)
            except ValueError:
                return None
            if expires.tzinfo is None:
                return None
        return TokenSet(stored.token, stored.extra.get("refresh_token") or None, expires)

    async def save(self, account_id: str, tokens: TokenSet) -> None:
        if tokens.expires_at is not None and tokens.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")
        current = self.store.get(account_id)
        extra = dict(current.extra) if current is not None else {}
        extra.pop("expires_at", None)
        if tokens.expires_at is not None:
            extra["expires_at"] = tokens.expires_at.isoformat()
        if tokens.refresh_token:
            extra["refresh_token"] = tokens.refresh_token
        self.store.put(account_id, Credentials(tokens.access_token, extra))
