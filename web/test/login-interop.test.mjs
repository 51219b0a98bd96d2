// @tokend/web/login against another provider: panva's oidc-provider (a
// certified OpenID Provider) on a local port, its development login form
// driven by plain HTTP. Discovery, authorization with PKCE, the iss
// response parameter, the code exchange, the ID token's checks, the
// manager's refresh, RP-Initiated Logout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager } from "../dist/index.js";
import { buildAuthorizeURL, buildLogoutURL, handleRedirect } from "../dist/login.js";
import { fakePage, fakeStorage } from "./helpers.mjs";

const REDIRECT = "https://app.test/callback";

async function startProvider(t) {
  const { default: Provider } = await import("oidc-provider");
  const { createServer } = await import("node:http");
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => server.close(r)));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [{ client_id: "spa", token_endpoint_auth_method: "none", redirect_uris: [REDIRECT], post_logout_redirect_uris: ["https://app.test/bye"], grant_types: ["authorization_code", "refresh_token"], response_types: ["code"] }],
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
    issueRefreshToken: () => true,
    features: { devInteractions: { enabled: true } },
  });
  server.on("request", provider.callback());
  return issuer;
}

/** The browser's part: follows redirects with cookies and submits the dev login and consent forms, until the redirect to the app. */
async function browse(url) {
  const jar = new Map();
  const send = async (u, init = {}) => {
    const res = await fetch(u, { ...init, redirect: "manual", headers: { ...init.headers, Cookie: [...jar].map(([k, v]) => `${k}=${v}`).join("; ") } });
    for (const c of res.headers.getSetCookie()) {
      const [kv] = c.split(";");
      const i = kv.indexOf("=");
      jar.set(kv.slice(0, i), kv.slice(i + 1));
    }
    return res;
  };
  let res = await send(url);
  for (let i = 0; i < 20; i++) {
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get("Location"), url).href;
      if (next.startsWith(REDIRECT)) return next;
      res = await send((url = next));
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="(\w+)"/.exec(html)?.[1];
    assert.ok(action && prompt, "a login or consent form: " + html.slice(0, 200));
    const body = new URLSearchParams({ prompt, login: "alice", password: "x" });
    res = await send(new URL(action, url).href, { method: "POST", headers: { "Content-Type": "application/x-www-form-urlencoded" }, body: body.toString() });
  }
  assert.fail("no redirect to the app");
}

test("oidc-provider: login, code exchange, ID token, refresh, logout URL", async (t) => {
  const issuer = await startProvider(t);
  const page = fakePage("https://app.test/orders");
  const storage = fakeStorage();
  const env = { storage, location: page.location };
  const url = await buildAuthorizeURL({ ...env, issuer, clientId: "spa", redirectUri: REDIRECT, scope: "openid offline_access", prompt: "consent" });
  const back = await browse(url);
  assert.equal(new URL(back).searchParams.get("iss"), issuer, "oidc-provider sends iss (RFC 9207)");

  const m = new TokenManager({ tokenEndpoint: issuer + "/token", clientId: "spa", events: null, crossTab: false });
  t.after(() => m.close());
  const r = await handleRedirect({ ...env, url: back, history: page.history, manager: m });
  assert.equal(r.claims.sub, "alice");
  assert.equal(r.claims.iss, issuer);
  assert.equal(r.claims.aud, "spa");
  assert.equal(r.returnTo, "/orders");
  assert.equal(typeof r.tokens.refresh_token, "string");
  const first = await m.getAccessToken();
  assert.equal(first, r.tokens.access_token);
  const second = await m.refresh();
  assert.notEqual(second, first, "the manager refreshes at oidc-provider's token endpoint");
  await assert.rejects(handleRedirect({ ...env, url: back }), { error: "invalid_state" });

  const out = new URL(await buildLogoutURL({ issuer, clientId: "spa", idTokenHint: r.idToken, postLogoutRedirectUri: "https://app.test/bye", state: "s" }));
  assert.equal(out.origin + out.pathname, issuer + "/session/end");
  const end = await fetch(out, { redirect: "manual" });
  assert.equal(end.status, 200, "oidc-provider accepts the end-session request (its confirmation page)");
});
