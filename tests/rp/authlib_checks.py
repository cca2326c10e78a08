"""What the authlib relying parties (authlib_private_key_jwt.py, authlib_client_secret_jwt.py)
check the same way: each step's outcome, the ID token as authlib's OpenID Connect client
validates it, userinfo, and introspection with a client assertion."""

import json
import urllib.request

import requests
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def attempt(call):
    """"ok", or "refused: <error>": every refusal is an answer here."""
    try:
        call()
        return "ok"
    except Exception as e:
        return f"refused: {e}"


def id_token(metadata, token, client_id):
    """As authlib's OpenID Connect client does (sync_openid.parse_id_token)."""
    with urllib.request.urlopen(metadata["jwks_uri"], timeout=10) as r:
        key_set = KeySet.import_key_set(json.load(r))
    decoded = jwt.decode(token["id_token"], key=key_set,
                         registry=JWSRegistry(algorithms=["RS256"], strict_check_header=False))
    claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [metadata["issuer"]]}},
                         {"nonce": None, "client_id": client_id, "access_token": token["access_token"]})
    claims.validate(leeway=60)


def userinfo(metadata, token):
    r = requests.get(metadata["userinfo_endpoint"], timeout=10,
                     headers={"Authorization": f"Bearer {token['access_token']}"})
    if r.status_code != 200 or r.json().get("email") != "alice@example.com":
        raise RuntimeError(f"{r.status_code} {r.text}")


def introspect(metadata, token, assertion):
    r = requests.post(metadata["introspection_endpoint"], timeout=10,
                      data={"token": token["access_token"], "client_assertion_type": ASSERTION_TYPE,
                            "client_assertion": assertion})
    if r.status_code != 200:
        raise RuntimeError(f"{r.status_code} {r.text}")
    if not r.json().get("active"):
        raise RuntimeError(f"inactive: {r.text}")
