// A relying party written with openid-client (panva; OpenID certified), the library most node
// apps sign in with. Usage: node openid_client_rp.mjs ISSUER CLIENT_ID REDIRECT_URI
// (NODE_EXTRA_CA_CERTS: the issuer's CA.)
//
// Prints one JSON line {"authorize"}: the test signs a user in and writes the callback URL back
// on stdin. Then: the code grant with PKCE, state and nonce (openid-client validates the ID
// token: signature from the JWKS, iss, aud, exp, nonce), userinfo (sub checked against the ID
// token), a refresh, and the end-session URL. Prints one JSON line of what it got.
import * as client from 'openid-client';
import { createInterface } from 'node:readline';

const [issuer, clientId, redirectUri] = process.argv.slice(2);
const config = await client.discovery(new URL(issuer), clientId, undefined, client.None());
const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const authorize = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email profile offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
});
console.log(JSON.stringify({ authorize: authorize.href }));

const lines = createInterface({ input: process.stdin });
const callback = await new Promise((resolve) => lines.once('line', resolve));
lines.close();
const out = {};
try {
  const tokens = await client.authorizationCodeGrant(config, new URL(callback), {
    pkceCodeVerifier: verifier,
    expectedNonce: nonce,
    expectedState: state,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  out.sub = claims.sub;
  out.id_token_email = claims.email ?? null;
  out.acr = claims.acr ?? null;
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
  out.userinfo_email = userinfo.email;
  out.userinfo_name = userinfo.name;
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
  out.refreshed_sub = refreshed.claims()?.sub ?? null;
  out.refresh_rotated = refreshed.refresh_token !== tokens.refresh_token;
  out.end_session = client.buildEndSessionUrl(config, {
    id_token_hint: refreshed.id_token ?? tokens.id_token,
  }).href;
} catch (e) {
  out.error = `${e.name}: ${e.message}${e.cause ? ` (${JSON.stringify(e.cause)})` : ''}`;
}
console.log(JSON.stringify(out));
