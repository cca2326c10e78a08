"""A relying party built on Flask-pyoidc that registers itself (RFC 7591) at its first login.

Usage: flask_pyoidc_rp.py ISSUER PORT [INITIAL_ACCESS_TOKEN]

GET / signs in (registering first, then redirecting straight to the provider) and answers the
ID token's claims and the userinfo as JSON. Started by tests/tests/cluster/relying_parties.rs.
"""

import logging
import sys

from flask import Flask, jsonify
from flask_pyoidc import OIDCAuthentication
from flask_pyoidc.provider_configuration import ClientRegistrationInfo, ProviderConfiguration
from flask_pyoidc.user_session import UserSession

issuer, port = sys.argv[1], int(sys.argv[2])
registration = {"client_name": "Flask-pyoidc test app"}
if len(sys.argv) > 3:
    registration["registration_token"] = sys.argv[3]

app = Flask(__name__)
app.config.update(
    OIDC_REDIRECT_URI=f"http://127.0.0.1:{port}/redirect_uri",
    SECRET_KEY="flask-pyoidc-test-only",
    # The provider's cookies live on the same host (another port): keep the names apart.
    SESSION_COOKIE_NAME="rp_session",
)
config = ProviderConfiguration(
    issuer=issuer,
    client_registration_info=ClientRegistrationInfo(**registration),
    auth_request_params={"scope": ["openid", "email", "profile"]},
)
auth = OIDCAuthentication({"default": config}, app)


@app.route("/")
@auth.oidc_auth("default")
def index():
    from flask import session

    user = UserSession(session)
    return jsonify(id_token=user.id_token, userinfo=user.userinfo)


@app.route("/healthz")
def healthz():
    return "ok"


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    app.run(host="127.0.0.1", port=port)
