// An upstream identity provider for the tests of issue 15: node oidc-provider (OpenID
// certified, independently written), on 127.0.0.1.
//
//   node upstream_oidc.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI KEYS_FILE
//
// - One confidential client (code flow with PKCE, refresh tokens).
// - Users carol (groups dev, ops) and dave (group finance); sign-in through oidc-provider's own
//   development pages (any password; the login names the user); consent is never asked.
// - Signing keys from KEYS_FILE (a JWK Set with private keys), made with one key when missing;
//   `--rotate` first puts a new key in front (it signs) and keeps the old one published. The
//   test restarts the process to rotate.
// - POST /admin/remove/<user> removes a user: their refresh tokens stop working.
// Prints one JSON line {"issuer", "kids"} once it listens.
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri, keysFile] = process.argv.slice(2);
const rotate = process.argv.includes('--rotate');
const issuer = `http://127.0.0.1:${port}`;

function newKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };
}

let keys = fs.existsSync(keysFile) ? JSON.parse(fs.readFileSync(keysFile, 'utf8')).keys : [newKey()];
if (rotate) keys = [newKey(), ...keys].slice(0, 2);
fs.writeFileSync(keysFile, JSON.stringify({ keys }));

const users = new Map([
  ['carol', { email: 'carol@corp.example', email_verified: true, name: 'Carol Upstream', preferred_username: 'carol', groups: ['dev', 'ops'] }],
  ['dave', { email: 'dave@corp.example', email_verified: true, name: 'Dave Upstream', preferred_username: 'dave', groups: ['finance'] }],
]);

const provider = new Provider(issuer, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  }],
  scopes: ['openid', 'offline_access', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  // ID tokens carry the claims (not only userinfo), as Google and Entra ID do.
  conformIdTokenClaims: false,
  findAccount: async (ctx, id) => {
    const user = users.get(id);
    if (!user) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...user }) };
  },
  // Consent is not what these tests are about: every scope asked is granted.
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    grant.addOIDCClaims(['email', 'email_verified', 'name', 'preferred_username', 'groups']);
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  jwks: { keys },
  cookies: { keys: ['kube-oidc-tests'] },
});

// Removing a user upstream: what the test does to see access end at the next refresh.
provider.use(async (ctx, next) => {
  const m = ctx.path.match(/^\/admin\/remove\/([a-z]+)$/);
  if (m && ctx.method === 'POST') {
    users.delete(m[1]);
    ctx.status = 204;
    return;
  }
  await next();
});

provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer, kids: keys.map((k) => k.kid) }));
});
