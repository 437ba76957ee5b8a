"""``obliviate keygen``: make the Ed25519 key that signs ledger checkpoints and certificates."""
from __future__ import annotations


def register(sub, p) -> None:
    kg = sub.add_parser("keygen", parents=[p["common"]], help="make the Ed25519 key that signs ledger checkpoints and "
                                                              "certificates (never in an output folder)")
    kg.add_argument("--key", help="where to write the private key (default $OBLIVIATE_SIGNING_KEY or "
                                  "~/.config/obliviate/signing-key.pem); the public key goes beside it as .pub")
    kg.set_defaults(fn=run)


def run(args) -> int:
    from obliviate.audit.signing import keygen

    path, kid = keygen(args.key)
    print(f"signing key {path} (private: keep it to yourself); public key {path}.pub; key id {kid}")
    return 0
