#!/usr/bin/env python3
"""A relying party that authenticates with private_key_jwt (RFC 7523), written with authlib's
OAuth2Session and PrivateKeyJWT. Usage: authlib_private_key_jwt.py ISSUER

It serves its JWK Set on 127.0.0.1 (jwks_uri), registers itself (RFC 7591), and prints one JSON
line {"client_id", "authorize"}; the test signs a user in and writes the callback URL back on
stdin. It then redeems the code with key A, validates the ID token as authlib's OpenID Connect
client does, reads userinfo, refreshes with key A, rotates its JWK Set to key B and refreshes
with B, tries A once more, and replays one assertion. Prints one JSON line of results:
"ok" or "refused: <error>" each."""

import http.server
import json
import sys
import threading
import time
import urllib.request

from authlib.integrations.requests_client import OAuth2Session
from authlib.oauth2.rfc7523 import PrivateKeyJWT
from joserfc.jwk import RSAKey

import authlib_checks as check
from authlib_checks import attempt

REDIRECT = "http://127.0.0.1:8000/cb"


class Jwks(http.server.BaseHTTPRequestHandler):
    keys = []

    def do_GET(self):
        body = json.dumps({"keys": [k.as_dict(private=False) for k in Jwks.keys]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def session(client_id, key, token_endpoint, **kw):
    s = OAuth2Session(client_id, key, token_endpoint_auth_method="private_key_jwt",
                      redirect_uri=REDIRECT, **kw)
    s.register_client_auth_method(PrivateKeyJWT(token_endpoint, headers={"kid": key.kid}))
    return s


def main():
    issuer = sys.argv[1]
    with urllib.request.urlopen(issuer + "/.well-known/openid-configuration", timeout=10) as r:
        metadata = json.load(r)
    token_endpoint = metadata["token_endpoint"]
    a = RSAKey.generate_key(2048, {"kid": "key-a", "use": "sig", "alg": "RS256"})
    b = RSAKey.generate_key(2048, {"kid": "key-b", "use": "sig", "alg": "RS256"})
    Jwks.keys = [a]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    jwks_uri = f"http://127.0.0.1:{server.server_address[1]}/jwks"

    request = urllib.request.Request(
        metadata["registration_endpoint"],
        data=json.dumps({
            "client_name": "authlib private_key_jwt",
            "redirect_uris": [REDIRECT],
            "grant_types": ["authorization_code", "refresh_token"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": jwks_uri,
            "scope": "openid email offline_access",
        }).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as r:
        registered = json.load(r)
    client_id = registered["client_id"]
    with_a = session(client_id, a, token_endpoint, scope="openid email offline_access",
                     code_challenge_method="S256")
    verifier = "v" * 64
    url, _ = with_a.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    print(json.dumps({"client_id": client_id, "authorize": url,
                      "secret_returned": "client_secret" in registered}), flush=True)

    callback = sys.stdin.readline().strip()
    results = {}
    token = {}

    def redeem():
        token.update(with_a.fetch_token(token_endpoint, authorization_response=callback,
                                        code_verifier=verifier))

    results["code_with_a"] = attempt(redeem)

    results["id_token"] = attempt(lambda: check.id_token(metadata, token, client_id))
    results["userinfo"] = attempt(lambda: check.userinfo(metadata, token))

    def refresh(key):
        def call():
            t = session(client_id, key, token_endpoint).refresh_token(
                token_endpoint, refresh_token=token["refresh_token"])
            token.update(t)
        return call

    results["refresh_with_a"] = attempt(refresh(a))
    # The client rotates: its JWK Set now holds only B. The provider fetches it again when an
    # assertion names a kid it does not know (at most once a second).
    Jwks.keys = [b]
    time.sleep(1.2)
    results["refresh_with_b"] = attempt(refresh(b))
    time.sleep(1.2)
    results["refresh_with_retired_a"] = attempt(refresh(a))

    # One assertion sent twice: the second is a replay (jti).
    assertion = PrivateKeyJWT(token_endpoint, headers={"kid": b.kid}).sign(
        type("Auth", (), {"client_id": client_id, "client_secret": b})(), token_endpoint)

    results["introspect"] = attempt(lambda: check.introspect(metadata, token, assertion))
    results["introspect_replayed"] = attempt(lambda: check.introspect(metadata, token, assertion))
    print(json.dumps(results), flush=True)
    server.shutdown()


if __name__ == "__main__":
    main()
