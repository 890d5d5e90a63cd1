// A real OpenID Connect provider on loopback for dnsportal's single sign-on tests: panva's `oidc-provider`
// (pinned in package.json), configured here with static clients, a small account store with a `groups` claim,
// and a plain login form a test drives over HTTP.
//
//   node tools/oidc_provider/server.mjs CONFIG.json
//
// CONFIG.json: {"host": "127.0.0.1", "port": 0,
//               "clients": [{"client_id": "...", "client_secret": "...", "redirect_uris": ["http://..."]}],
//               "accounts": {"<username>": {"password": "...", "email": "...", "name": "...", "groups": ["..."]}}}
// Port 0 picks a free port. Once it listens, the server prints one JSON line on stdout:
//   {"ready": true, "issuer": "http://127.0.0.1:<port>"}
// and serves until SIGTERM or SIGINT.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const accounts = config.accounts ?? {};

// A signing key made at each start: the relying party reads it from jwks_uri, as from any provider.
const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: crypto.randomUUID(), use: 'sig', alg: 'RS256' };

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error) {
  const alert = error ? `<p role="alert">${escapeHtml(error)}</p>` : '';
  return `<!doctype html><html><head><title>Sign in</title></head><body>
<h1>Sign in to continue to ${escapeHtml(clientId)}</h1>${alert}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Username <input name="username" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Sign in</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

// The provider's own routes, plus /interaction/<uid> (the login form) and /interaction/<uid>/login (its post).
async function handleInteraction(provider, req, res) {
  const details = await provider.interactionDetails(req, res);
  const clientId = details.params.client_id;
  if (req.method === 'GET') {
    send(res, 200, loginPage(details.uid, clientId, ''));
    return;
  }
  const form = await readForm(req);
  const username = form.get('username') ?? '';
  const account = accounts[username];
  const given = Buffer.from(form.get('password') ?? '');
  const expected = Buffer.from(account?.password ?? '');
  if (!account || given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) {
    send(res, 401, loginPage(details.uid, clientId, 'Wrong username or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: username } }, { mergeWithLastSubmission: false });
}

const server = http.createServer();
server.listen(config.port ?? 0, config.host ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  const issuer = `http://${address}:${port}`;
  const provider = new Provider(issuer, {
    clients: (config.clients ?? []).map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      redirect_uris: c.redirect_uris,
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
    })),
    // The `groups` scope releases the `groups` claim, as Keycloak, Dex and Authentik name it.
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    async findAccount(_ctx, sub) {
      const account = accounts[sub];
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return {
            sub,
            email: account.email,
            email_verified: true,
            name: account.name ?? sub,
            preferred_username: sub,
            groups: account.groups ?? [],
          };
        },
      };
    },
    // The clients are this provider's own (first party): consent is implied, so a login ends the interaction.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
      await grant.save();
      return grant;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    jwks: { keys: [signingKey] },
    cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
    // Lifetimes in seconds, set so that the library does not warn about its defaults.
    ttl: { Interaction: 600, Session: 3600, Grant: 3600, AccessToken: 600, IdToken: 600 },
  });
  const callback = provider.callback();
  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      handleInteraction(provider, req, res).catch((err) => {
        console.error(err);
        send(res, 400, `<p role="alert">${escapeHtml(err.message)}</p>`);
      });
      return;
    }
    callback(req, res);
  });
  process.stdout.write(`${JSON.stringify({ ready: true, issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
