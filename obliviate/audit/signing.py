"""Signatures for the audit trail: Ed25519 keys (the ``cryptography`` package), signed ledger checkpoints and
signed certificates.

A self-hash proves nothing: whoever edits a certificate can recompute it. A signature can only be made with the
private key, which stays with the model owner (``obliviate keygen``; by default
``~/.config/obliviate/signing-key.pem``, mode 0600, or ``$OBLIVIATE_SIGNING_KEY``) and is never written into an
output folder. Verifiers check a signature against the owner's *public* key, handed to them out of band (the
``.pub`` file beside the key, or its fingerprint, which every signature names): a certificate re-signed with
another key is then a signature by the wrong signer.

What is signed is the canonical JSON of an object (sorted keys, no spaces, non-JSON values as strings), so the
same content always gives the same bytes.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import sys
from pathlib import Path

from obliviate.core.utils import ObliviateError

ALGORITHM = "ed25519"
KEY_ENV = "OBLIVIATE_SIGNING_KEY"


def default_key_path() -> Path:
    """``$OBLIVIATE_SIGNING_KEY``, or ``~/.config/obliviate/signing-key.pem``."""
    env = os.environ.get(KEY_ENV)
    return Path(env) if env else Path.home() / ".config" / "obliviate" / "signing-key.pem"


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False).encode("utf-8")


def key_id(public_raw: bytes) -> str:
    """The public key's fingerprint: SHA-256 of its 32 raw bytes, hex."""
    return hashlib.sha256(public_raw).hexdigest()


def _raw(public_key) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def keygen(path: str | os.PathLike | None = None) -> tuple[Path, str]:
    """Write a new Ed25519 private key (PKCS#8 PEM, mode 0600) at ``path`` and its public key at ``path.pub``;
    ``(path, key id)``. An existing file is never replaced."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = Path(path) if path else default_key_path()
    pub = path.with_name(path.name + ".pub")
    for p in (path, pub):
        if p.exists():
            raise ObliviateError(f"{p} exists; obliviate never replaces a key (move it away to make a new one)")
    if any((path.parent / marker).is_file() for marker in ("obliviate.json", "results.json", "certificate.json")):
        raise ObliviateError(f"{path.parent} is an obliviate output folder; keep the private key out of outputs")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    pub.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo))
    return path, key_id(_raw(key.public_key()))


def load_private(path: str | os.PathLike | None = None, create: bool = False):
    """The private key at ``path`` (default: :func:`default_key_path`). With ``create``, a missing default key is
    made (and said so on stderr); a missing named key is an error."""
    from cryptography.hazmat.primitives import serialization

    named = path is not None
    path = Path(path) if path else default_key_path()
    if not path.is_file():
        if create and not named:
            try:
                _, kid = keygen(path)
                print(f"obliviate: note: made a signing key {path} (key id {kid[:16]}); keep it private, and give "
                      f"{path}.pub to whoever verifies your certificates", file=sys.stderr)
            except FileExistsError:  # another process made it in the meantime
                pass
        else:
            raise ObliviateError(f"no signing key at {path}; make one with `obliviate keygen`")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as e:
        raise ObliviateError(f"{path}: not an unencrypted PEM private key ({e})") from None
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not isinstance(key, Ed25519PrivateKey):
        raise ObliviateError(f"{path}: not an Ed25519 key (obliviate signs with Ed25519)")
    return key


def trusted_key_id(public_key_path: str | os.PathLike | None = None) -> tuple[str | None, str]:
    """``(key id, where it came from)`` of the key a verifier trusts: ``public_key_path`` (a PEM public key, or a
    file holding a 64-hex key id), else the local signing key's public half; ``(None, why)`` when there is none."""
    from cryptography.hazmat.primitives import serialization

    if public_key_path is not None:
        p = Path(public_key_path)
        if not p.is_file():
            raise ObliviateError(f"--public-key {p}: no such file")
        text = p.read_bytes()
        if len(text.strip()) == 64 and all(c in b"0123456789abcdef" for c in text.strip().lower()):
            return text.strip().decode().lower(), str(p)
        try:
            return key_id(_raw(serialization.load_pem_public_key(text))), str(p)
        except (ValueError, TypeError) as e:
            raise ObliviateError(f"--public-key {p}: not a PEM public key or a key id ({e})") from None
    local = default_key_path()
    if local.is_file():
        return key_id(_raw(load_private(local).public_key())), f"the local signing key {local}"
    return None, "no trusted key: give --public-key (the signer's .pub file or key id)"


def sign(obj, key) -> dict:
    """A signature block for ``obj``: the algorithm, the public key (raw, base64), its id, the signature."""
    raw = _raw(key.public_key())
    return {"algorithm": ALGORITHM, "public_key": base64.b64encode(raw).decode(), "key_id": key_id(raw),
            "signature": base64.b64encode(key.sign(canonical(obj))).decode()}


def check(obj, block: dict | None) -> str | None:
    """None if ``block`` is a valid signature of ``obj`` by the key it names; else what is wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if not isinstance(block, dict) or block.get("algorithm") != ALGORITHM:
        return "not signed (no Ed25519 signature)"
    try:
        raw = base64.b64decode(block["public_key"])
        if key_id(raw) != block.get("key_id"):
            return "the signature's key id does not match its public key"
        Ed25519PublicKey.from_public_bytes(raw).verify(base64.b64decode(block["signature"]), canonical(obj))
    except InvalidSignature:
        return "the signature does not match the content (it was changed after signing)"
    except (KeyError, ValueError, TypeError):
        return "the signature block is malformed"
    return None


__all__ = ["check", "default_key_path", "key_id", "keygen", "load_private", "sign", "trusted_key_id"]
