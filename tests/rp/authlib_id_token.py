#!/usr/bin/env python3
"""Verifies tokens the way authlib's OpenID Connect client verifies an ID token
(authlib.integrations.base_client.sync_openid.parse_id_token: the issuer's JWKS, CodeIDToken
claims, the client ID as audience). Usage: authlib_id_token.py ISSUER CLIENT_ID TOKEN...
Prints one line per token: "accepted" or "refused: <reason>"."""

import json
import sys
import urllib.request

from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry


def main():
    issuer, client_id, tokens = sys.argv[1], sys.argv[2], sys.argv[3:]
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=10) as r:
        metadata = json.load(r)
    with urllib.request.urlopen(metadata["jwks_uri"], timeout=10) as r:
        key_set = KeySet.import_key_set(json.load(r))
    algorithms = metadata.get("id_token_signing_alg_values_supported")
    for token in tokens:
        try:
            decoded = jwt.decode(
                token, key=key_set, registry=JWSRegistry(algorithms=algorithms, strict_check_header=False)
            )
            claims = CodeIDToken(
                decoded.claims,
                decoded.header,
                {"iss": {"values": [metadata["issuer"]]}},
                {"nonce": None, "client_id": client_id},
            )
            claims.validate(leeway=120)
            print("accepted")
        except Exception as e:  # every refusal is an answer here
            print(f"refused: {type(e).__name__}: {e}")


if __name__ == "__main__":
    main()
