#!/usr/bin/env python3
"""A relying party that authenticates with client_secret_jwt (RFC 7523, HMAC keyed by its
secret), written with authlib's OAuth2Session and ClientSecretJWT.

  authlib_client_secret_jwt.py ISSUER CLIENT_ID SECRET
      Prints one JSON line {"authorize"}; the test signs a user in and writes the callback URL
      back on stdin. Redeems the code, validates the ID token as authlib's OpenID Connect client
      does, reads userinfo, refreshes, introspects, and replays one assertion. Prints one JSON
      line of results: "ok" or "refused: <error>" each.
  authlib_client_secret_jwt.py ISSUER CLIENT_ID SECRET --client-credentials
      One client_credentials grant. Prints {"client_credentials": "ok" | "refused: ..."}."""

import json
import sys
import urllib.request

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

REDIRECT = "http://127.0.0.1:8000/cb"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def session(client_id, secret, token_endpoint, **kw):
    s = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_jwt",
                      redirect_uri=REDIRECT, **kw)
    s.register_client_auth_method(ClientSecretJWT(token_endpoint))
    return s


def attempt(call):
    try:
        call()
        return "ok"
    except Exception as e:  # every refusal is an answer here
        return f"refused: {e}"


def main():
    issuer, client_id, secret = sys.argv[1:4]
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=10) as r:
        metadata = json.load(r)
    token_endpoint = metadata["token_endpoint"]
    if "--client-credentials" in sys.argv[4:]:
        def grant():
            session(client_id, secret, token_endpoint).fetch_token(
                token_endpoint, grant_type="client_credentials")
        print(json.dumps({"client_credentials": attempt(grant)}), flush=True)
        return

    s = session(client_id, secret, token_endpoint, scope="openid email offline_access",
                code_challenge_method="S256")
    verifier = "v" * 64
    url, _ = s.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    print(json.dumps({"authorize": url}), flush=True)

    callback = sys.stdin.readline().strip()
    results = {}
    token = {}

    def redeem():
        token.update(s.fetch_token(token_endpoint, authorization_response=callback,
                                   code_verifier=verifier))

    results["code"] = attempt(redeem)

    def id_token():
        # As authlib's OpenID Connect client does (sync_openid.parse_id_token).
        with urllib.request.urlopen(metadata["jwks_uri"], timeout=10) as r:
            key_set = KeySet.import_key_set(json.load(r))
        decoded = jwt.decode(token["id_token"], key=key_set,
                             registry=JWSRegistry(algorithms=["RS256"], strict_check_header=False))
        claims = CodeIDToken(decoded.claims, decoded.header, {"iss": {"values": [metadata["issuer"]]}},
                             {"nonce": None, "client_id": client_id, "access_token": token["access_token"]})
        claims.validate(leeway=60)

    def userinfo():
        r = requests.get(metadata["userinfo_endpoint"], timeout=10,
                         headers={"Authorization": f"Bearer {token['access_token']}"})
        if r.status_code != 200 or r.json().get("email") != "alice@example.com":
            raise RuntimeError(f"{r.status_code} {r.text}")

    def refresh():
        token.update(session(client_id, secret, token_endpoint).refresh_token(
            token_endpoint, refresh_token=token["refresh_token"]))

    results["id_token"] = attempt(id_token)
    results["userinfo"] = attempt(userinfo)
    results["refresh"] = attempt(refresh)

    # One assertion, as authlib signs it, sent twice: the second is a replay (jti).
    auth = type("Auth", (), {"client_id": client_id, "client_secret": secret})()
    assertion = ClientSecretJWT(metadata["introspection_endpoint"]).sign(
        auth, metadata["introspection_endpoint"])

    def introspect():
        r = requests.post(metadata["introspection_endpoint"], timeout=10,
                          data={"token": token["access_token"], "client_assertion_type": ASSERTION_TYPE,
                                "client_assertion": assertion})
        if r.status_code != 200:
            raise RuntimeError(f"{r.status_code} {r.text}")
        if not r.json().get("active"):
            raise RuntimeError(f"inactive: {r.text}")

    results["introspect"] = attempt(introspect)
    results["introspect_replayed"] = attempt(introspect)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
