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

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import ClientSecretJWT

import authlib_checks as check
from authlib_checks import attempt

REDIRECT = "http://127.0.0.1:8000/cb"


def session(client_id, secret, token_endpoint, **kw):
    s = OAuth2Session(client_id, secret, token_endpoint_auth_method="client_secret_jwt",
                      redirect_uri=REDIRECT, **kw)
    s.register_client_auth_method(ClientSecretJWT(token_endpoint))
    return s


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

    def refresh():
        token.update(session(client_id, secret, token_endpoint).refresh_token(
            token_endpoint, refresh_token=token["refresh_token"]))

    results["id_token"] = attempt(lambda: check.id_token(metadata, token, client_id))
    results["userinfo"] = attempt(lambda: check.userinfo(metadata, token))
    results["refresh"] = attempt(refresh)

    # One assertion, as authlib signs it, sent twice: the second is a replay (jti).
    auth = type("Auth", (), {"client_id": client_id, "client_secret": secret})()
    assertion = ClientSecretJWT(metadata["introspection_endpoint"]).sign(
        auth, metadata["introspection_endpoint"])

    results["introspect"] = attempt(lambda: check.introspect(metadata, token, assertion))
    results["introspect_replayed"] = attempt(lambda: check.introspect(metadata, token, assertion))
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
