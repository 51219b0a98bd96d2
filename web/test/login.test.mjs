// @tokend/web/login against a fake provider: the authorization request,
// the redirect's checks (state, iss, error, nonce, ID token) with nothing
// sent when one fails, the URL cleaned, single use, logins in flight,
// discovery, logout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager } from "../dist/index.js";
import { OAuthError, buildAuthorizeURL, buildLogoutURL, discover, handleRedirect, login, logout, pkceChallenge } from "../dist/login.js";
import { fakePage, fakeProvider, fakeStorage, json } from "./helpers.mjs";

// Each test has its own issuer: discovery is cached per issuer for the life of the page.
let n = 0;
const newIssuer = () => `https://id${++n}.test`;
const APP = "https://app.test";

/** A provider, a page on the app and its sessionStorage, and the options login() and handleRedirect() take there. */
function setup(t, { md, idClaims, page = APP + "/orders?tab=2#top" } = {}) {
  const p = fakeProvider(newIssuer(), { md, idClaims });
  const pg = fakePage(page);
  const storage = fakeStorage();
  const env = { fetch: p.fetch, storage, location: pg.location };
  const opts = { ...env, issuer: p.issuer, clientId: "spa", redirectUri: APP + "/callback" };
  const finish = (url, more = {}) => handleRedirect({ ...env, history: pg.history, url, ...more });
  return { p, pg, storage, env, opts, finish };
}

/** Rejects with an OAuthError whose error is code; returns it. */
async function refused(promise, code) {
  const e = await promise.then(() => assert.fail("not refused"), (e) => e);
  assert.ok(e instanceof OAuthError, String(e));
  assert.equal(e.error, code, e.message);
  return e;
}

const RFC7636_OCTETS = [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121];
const RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

test("PKCE: RFC 7636 Appendix B: the octets give its verifier, the verifier its S256 challenge", async (t) => {
  assert.equal(await pkceChallenge(RFC7636_VERIFIER), RFC7636_CHALLENGE);
  const { opts, storage } = setup(t);
  let fills = 0;
  // The first fill is the verifier's; state and nonce get other bytes.
  const getRandomValues = (a) => (a.set(fills++ === 0 ? RFC7636_OCTETS : a.map((_, i) => i + fills)), a);
  const url = new URL(await buildAuthorizeURL({ ...opts, getRandomValues }));
  assert.equal(url.searchParams.get("code_challenge"), RFC7636_CHALLENGE);
  assert.equal(url.searchParams.get("code_challenge_method"), "S256");
  const [[key, value]] = storage.map;
  assert.equal(key, "tokend:login:" + url.searchParams.get("state"));
  assert.equal(JSON.parse(value).verifier, RFC7636_VERIFIER);
});

test("PKCE: verifier, state and nonce are 43 base64url characters of fresh randomness each", async (t) => {
  const { opts, storage } = setup(t);
  const a = new URL(await buildAuthorizeURL(opts)).searchParams;
  const b = new URL(await buildAuthorizeURL(opts)).searchParams;
  const pending = [...storage.map.values()].map((v) => JSON.parse(v));
  const values = [a.get("state"), a.get("nonce"), b.get("state"), b.get("nonce"), ...pending.map((p) => p.verifier)];
  for (const v of values) assert.match(v, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(new Set(values).size, values.length);
  assert.equal(a.get("code_challenge"), await pkceChallenge(pending[0].verifier));
});

test("login(): discovery, then to the authorization endpoint with every parameter; the login waits in sessionStorage", async (t) => {
  const { p, pg, opts, storage } = setup(t, { md: { authorization_endpoint: "" } });
  p.metadata.authorization_endpoint = p.issuer + "/oauth/authorize?tenant=a";
  await login({
    ...opts,
    scope: "openid profile",
    resource: ["https://api.test", "https://files.test"],
    prompt: "login",
    maxAge: 300,
    loginHint: "alice",
    extraParams: { ui_locales: "fr", client_id: "evil", code_challenge_method: "plain" },
  });
  assert.equal(p.discoveryCalls.length, 1);
  assert.equal(p.discoveryCalls[0].url, p.issuer + "/.well-known/openid-configuration");
  assert.equal(pg.assigned.length, 1);
  const u = new URL(pg.assigned[0]);
  assert.equal(u.origin + u.pathname, p.issuer + "/oauth/authorize");
  const q = u.searchParams;
  const state = q.get("state");
  assert.deepEqual([...q.keys()].sort(), ["client_id", "code_challenge", "code_challenge_method", "login_hint", "max_age", "nonce", "prompt", "redirect_uri", "resource", "resource", "response_type", "scope", "state", "tenant", "ui_locales"]);
  assert.equal(q.get("tenant"), "a");
  assert.equal(q.get("response_type"), "code");
  assert.equal(q.get("client_id"), "spa", "extraParams cannot replace the client");
  assert.equal(q.get("code_challenge_method"), "S256", "nor the PKCE method");
  assert.equal(q.get("redirect_uri"), APP + "/callback");
  assert.equal(q.get("scope"), "openid profile");
  assert.deepEqual(q.getAll("resource"), ["https://api.test", "https://files.test"]);
  assert.equal(q.get("prompt"), "login");
  assert.equal(q.get("max_age"), "300");
  assert.equal(q.get("login_hint"), "alice");
  assert.equal(q.get("ui_locales"), "fr");
  const pending = JSON.parse(storage.getItem("tokend:login:" + state));
  assert.deepEqual({ ...pending, verifier: "-" }, {
    issuer: p.issuer,
    clientId: "spa",
    redirectUri: APP + "/callback",
    verifier: "-",
    nonce: q.get("nonce"),
    returnTo: "/orders?tab=2#top",
    tokenEndpoint: p.issuer + "/oauth/token",
    iss: true,
    oidc: true,
    resource: ["https://api.test", "https://files.test"],
  });
  assert.equal(q.get("code_challenge"), await pkceChallenge(pending.verifier));
});

test("login(): the defaults send scope openid and nothing optional", async (t) => {
  const { pg, opts } = setup(t);
  await login({ ...opts, returnTo: "/home" });
  const q = new URL(pg.assigned[0]).searchParams;
  assert.equal(q.get("scope"), "openid");
  for (const k of ["prompt", "max_age", "login_hint", "resource"]) assert.equal(q.has(k), false, k);
});

test("handleRedirect(): exchanges the code with its verifier, checks the ID token, starts the manager, cleans the URL, says where to return", async (t) => {
  const { p, pg, opts, storage, finish } = setup(t);
  await login({ ...opts, resource: "https://api.test" });
  const pending = JSON.parse([...storage.map.values()][0]);
  const back = new URL(p.authorize(pg.assigned[0]));
  back.searchParams.set("session_state", "xyz");
  back.searchParams.append("keep", "1");
  back.hash = "#frag";
  pg.location.href = back.href;
  const m = new TokenManager({ tokenEndpoint: p.metadata.token_endpoint, clientId: "spa", fetch: p.fetch, events: null, crossTab: false });
  t.after(() => m.close());

  const r = await handleRedirect({ fetch: p.fetch, storage, location: pg.location, history: pg.history, manager: m });

  assert.equal(p.tokenCalls.length, 1);
  const call = p.tokenCalls[0];
  assert.equal(call.method, "POST");
  assert.equal(call.headers.get("Content-Type"), "application/x-www-form-urlencoded");
  assert.equal(call.credentials, undefined);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(call.body)), {
    grant_type: "authorization_code",
    code: "code0",
    redirect_uri: APP + "/callback",
    code_verifier: pending.verifier,
    resource: "https://api.test",
    client_id: "spa",
  });
  assert.deepEqual(r.tokens, { access_token: "at1", refresh_token: "rt1", expires_in: 3600, token_type: "Bearer", id_token: r.idToken });
  assert.equal(r.claims.sub, "alice");
  assert.equal(r.claims.nonce, pending.nonce);
  assert.equal(r.returnTo, "/orders?tab=2#top");
  assert.equal(await m.getAccessToken(), "at1", "the manager holds the login's token");
  assert.deepEqual(pg.replaced, [{ data: { router: 1 }, url: APP + "/callback?keep=1#frag" }], "response parameters gone; others, the hash and history.state kept");
  assert.equal(storage.map.size, 0, "the login in flight is used up");

  // A reload of the cleaned page: nothing to do, nothing sent.
  assert.equal(await handleRedirect({ fetch: p.fetch, storage, location: pg.location, history: pg.history }), null);
  // The same response again (back button, a copied URL): refused without a request.
  await refused(finish(back.href), "invalid_state");
  assert.equal(p.tokenCalls.length, 1);
  assert.equal(await m.getAccessToken(), "at1", "a refused replay leaves the login alone");
});

test("handleRedirect(): a URL without a response is a no-op returning null (a reload after login never logs out)", async (t) => {
  const { p, pg, storage, finish } = setup(t);
  for (const url of [APP + "/callback", APP + "/callback?keep=1#x", APP + "/callback?state=abc", APP + "/#/route?code=1"]) {
    assert.equal(await finish(url), null, url);
  }
  assert.equal(p.calls.length, 0);
  assert.equal(pg.replaced.length, 0);
  assert.equal(storage.map.size, 0);
});

test("handleRedirect(): a state no login has is refused; nothing is sent, the real login still finishes", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  await login(opts);
  const good = new URL(p.authorize(pg.assigned[0]));
  for (const state of ["forged", "", null]) {
    const bad = new URL(good);
    if (state === null) bad.searchParams.delete("state");
    else bad.searchParams.set("state", state);
    const e = await refused(finish(bad.href), "invalid_state");
    assert.equal(e.status, undefined);
  }
  assert.equal(p.tokenCalls.length, 0);
  const r = await finish(good.href);
  assert.equal(r.tokens.access_token, "at1");
});

test("handleRedirect(): iss of another issuer is refused (RFC 9207), nothing sent, the login used up", async (t) => {
  const { p, pg, opts, storage, finish } = setup(t);
  await login(opts);
  const back = new URL(p.authorize(pg.assigned[0]));
  back.searchParams.set("iss", p.issuer + "/");
  await refused(finish(back.href), "invalid_issuer");
  assert.equal(p.tokenCalls.length, 0);
  assert.equal(storage.map.size, 0);
  back.searchParams.set("iss", p.issuer);
  await refused(finish(back.href), "invalid_state");
  assert.equal(p.tokenCalls.length, 0);
});

test("handleRedirect(): a missing iss is refused when the metadata promises it, accepted when it does not", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  await login(opts);
  const back = new URL(p.authorize(pg.assigned[0]));
  back.searchParams.delete("iss");
  await refused(finish(back.href), "invalid_issuer");
  assert.equal(p.tokenCalls.length, 0);

  const other = setup(t, { md: { authorization_response_iss_parameter_supported: undefined } });
  await login(other.opts);
  const back2 = new URL(other.p.authorize(other.pg.assigned[0]));
  back2.searchParams.delete("iss");
  assert.equal((await other.finish(back2.href)).tokens.access_token, "at1");
  // Present, it must still match, promised or not.
  await login(other.opts);
  const back3 = new URL(other.p.authorize(other.pg.assigned[1]));
  back3.searchParams.set("iss", "https://evil.test");
  await refused(other.finish(back3.href), "invalid_issuer");
  assert.equal(other.p.tokenCalls.length, 1);
});

test("handleRedirect(): the provider's error is an OAuthError with its error and description; nothing sent, URL cleaned", async (t) => {
  const { p, pg, opts, storage, finish } = setup(t);
  await login({ ...opts, prompt: "none" });
  const state = new URL(pg.assigned[0]).searchParams.get("state");
  const url = `${APP}/callback?error=login_required&error_description=No+session&state=${state}&iss=${encodeURIComponent(p.issuer)}&keep=1`;
  const e = await refused(finish(url), "login_required");
  assert.equal(e.error_description, "No session");
  assert.equal(e.status, undefined);
  assert.equal(p.tokenCalls.length, 0);
  assert.equal(storage.map.size, 0);
  assert.deepEqual(pg.replaced.map((r) => r.url), [APP + "/callback?keep=1"]);
  // An empty error is still an error: no exchange without a code.
  await login(opts);
  const state2 = new URL(pg.assigned[1]).searchParams.get("state");
  await refused(finish(`${APP}/callback?error=&state=${state2}&iss=${encodeURIComponent(p.issuer)}`), "");
  assert.equal(p.tokenCalls.length, 0);
  // An error with a state no login has is not the provider's word.
  await refused(finish(`${APP}/callback?error=access_denied&state=forged`), "invalid_state");
});

test("handleRedirect(): a response in the fragment is refused", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  await login(opts);
  const q = new URL(p.authorize(pg.assigned[0])).searchParams;
  await refused(finish(`${APP}/callback#code=${q.get("code")}&state=${q.get("state")}`), "invalid_response");
  await refused(finish(`${APP}/callback#access_token=at&state=${q.get("state")}`), "invalid_response");
  assert.equal(p.tokenCalls.length, 0);
});

test("handleRedirect(): an ID token of another login (nonce) is refused and the manager not started", async (t) => {
  const { p, pg, opts, finish } = setup(t, { idClaims: (c) => ({ ...c, nonce: "attacker's" }) });
  await login(opts);
  let started = 0;
  await refused(finish(p.authorize(pg.assigned[0]), { manager: { start: () => started++ } }), "invalid_nonce");
  assert.equal(p.tokenCalls.length, 1);
  assert.equal(started, 0);
});

for (const [name, idClaims] of [
  ["of another issuer", (c) => ({ ...c, iss: "https://evil.test" })],
  ["for another audience", (c) => ({ ...c, aud: ["other"] })],
  ["for another party (azp)", (c) => ({ ...c, aud: ["spa", "other"], azp: "other" })],
  ["without sub", (c) => ({ ...c, sub: undefined })],
]) {
  test(`handleRedirect(): an ID token ${name} is refused`, async (t) => {
    const { p, pg, opts, finish } = setup(t, { idClaims });
    await login(opts);
    let started = 0;
    const e = await refused(finish(p.authorize(pg.assigned[0]), { manager: { start: () => started++ } }), "invalid_id_token");
    assert.match(e.message, new RegExp(name.replace(/[()]/g, "\\$&")));
    assert.equal(started, 0);
  });
}

test("handleRedirect(): an openid login whose token answer has no ID token is refused; without openid none is needed", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  p.tokenReply = () => json(200, { access_token: "at", refresh_token: "rt", expires_in: 60 });
  await login(opts);
  await refused(finish(p.authorize(pg.assigned[0])), "invalid_id_token");
  await login({ ...opts, scope: "api", returnTo: "/x" });
  const r = await finish(p.authorize(pg.assigned[1]));
  assert.deepEqual(r, { tokens: { access_token: "at", refresh_token: "rt", expires_in: 60 }, idToken: undefined, claims: undefined, returnTo: "/x" });
});

test("handleRedirect(): an ID token's exp and iat are never compared with the device clock", async (t) => {
  // exp: 1 (1970) and iat in 2100 both pass: a wrong clock must not break a login.
  const { p, pg, opts, finish } = setup(t, { idClaims: (c) => ({ ...c, exp: 1, iat: 4102444800 }) });
  await login(opts);
  const r = await finish(p.authorize(pg.assigned[0]));
  assert.equal(r.claims.exp, 1);
  assert.equal(r.tokens.access_token, "at1");
});

test("handleRedirect(): the token endpoint's refusal is an OAuthError with its status and error", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  await login(opts);
  const back = new URL(p.authorize(pg.assigned[0]));
  p.codes.clear(); // the code expired at the provider
  const e = await refused(finish(back.href), "invalid_grant");
  assert.equal(e.status, 400);
  assert.equal(e.error_description, "bad code");
});

test("handleRedirect(): cookie mode sends the exchange with credentials and X-Tokend", async (t) => {
  const { p, pg, opts, finish } = setup(t);
  await login(opts);
  await finish(p.authorize(pg.assigned[0]), { cookie: true });
  assert.equal(p.tokenCalls[0].credentials, "include");
  assert.equal(p.tokenCalls[0].headers.get("X-Tokend"), "1");
});

test("two logins in flight (two tabs, or a double click) each finish, once, in either order", async (t) => {
  const { p, pg, opts, storage, finish } = setup(t);
  await login({ ...opts, returnTo: "/a" });
  await login({ ...opts, returnTo: "/b" });
  assert.equal(storage.map.size, 2);
  assert.equal(p.discoveryCalls.length, 1, "discovery is read once per issuer");
  const [first, second] = pg.assigned.map((u) => p.authorize(u));
  const rb = await finish(second);
  const ra = await finish(first);
  assert.deepEqual([ra.returnTo, rb.returnTo], ["/a", "/b"]);
  assert.deepEqual([ra.tokens.access_token, rb.tokens.access_token], ["at2", "at1"]);
  const verifiers = p.tokenCalls.map((c) => new URLSearchParams(c.body).get("code_verifier"));
  assert.notEqual(verifiers[0], verifiers[1]);
  assert.equal(storage.map.size, 0);
  await refused(finish(first), "invalid_state");
  await refused(finish(second), "invalid_state");
  assert.equal(p.tokenCalls.length, 2);
});

test("discover(): metadata naming another issuer is refused, and nothing is cached or kept", async (t) => {
  const { p, opts, storage, pg } = setup(t);
  p.metadata.issuer = p.issuer + "/";
  const e = await refused(login(opts), "invalid_metadata");
  assert.match(e.message, /names issuer/);
  assert.equal(storage.map.size, 0);
  assert.equal(pg.assigned.length, 0);
  // A failed read is not cached: once the provider is right, it is read again.
  p.metadata.issuer = p.issuer;
  assert.equal((await discover(p.issuer, { fetch: p.fetch })).issuer, p.issuer);
  assert.equal(p.discoveryCalls.length, 2);
});

test("discover(): a 404 falls back to the RFC 8414 document, at its path-inserted address", async () => {
  const issuer = newIssuer() + "/tenant/a";
  const seen = [];
  const md = { issuer, authorization_endpoint: issuer + "/authorize", token_endpoint: issuer + "/token" };
  const f = async (url) => (seen.push(String(url)), String(url).includes("oauth-authorization-server") ? json(200, md) : json(404, {}));
  assert.deepEqual(await discover(issuer, { fetch: f }), md);
  assert.deepEqual(seen, [issuer + "/.well-known/openid-configuration", new URL(issuer).origin + "/.well-known/oauth-authorization-server/tenant/a"]);
  // A metadata document without the endpoints the login needs is refused.
  const bare = newIssuer();
  await refused(discover(bare, { fetch: async () => json(200, { issuer: bare, token_endpoint: bare + "/t" }) }), "invalid_metadata");
  // Another failure is the answer's OAuthError.
  const down = newIssuer();
  const e = await discover(down, { fetch: async () => json(503, { error: "temporarily_unavailable" }) }).catch((e) => e);
  assert.ok(e instanceof OAuthError);
  assert.equal(e.status, 503);
});

test("logout(): the manager logs out first, then the end-session URL with the RP-Initiated Logout parameters", async (t) => {
  const { p, pg, env } = setup(t);
  const order = [];
  const manager = { logout: async () => { order.push("manager"); throw new OAuthError("revocation failed"); } };
  const location = { href: pg.location.href, assign: (u) => order.push(u) };
  await logout({ ...env, location, issuer: p.issuer, clientId: "spa", idTokenHint: "idt", postLogoutRedirectUri: APP + "/bye", state: "s1", endFamilies: true, manager });
  assert.equal(order.length, 2);
  assert.equal(order[0], "manager", "the tokens are gone before the page leaves, even if revocation failed");
  const u = new URL(order[1]);
  assert.equal(u.origin + u.pathname, p.issuer + "/oauth/logout");
  assert.deepEqual(Object.fromEntries(u.searchParams), { id_token_hint: "idt", client_id: "spa", post_logout_redirect_uri: APP + "/bye", state: "s1", end_families: "true" });
  // end_families only when asked.
  const plain = new URL(await buildLogoutURL({ ...env, issuer: p.issuer, clientId: "spa" }));
  assert.deepEqual(Object.fromEntries(plain.searchParams), { client_id: "spa" });
});

test("logout(): a provider without end_session_endpoint: the manager still logs out, then an OAuthError", async (t) => {
  const { p, env, pg } = setup(t, { md: { end_session_endpoint: undefined } });
  let out = 0;
  await refused(logout({ ...env, issuer: p.issuer, clientId: "spa", manager: { logout: async () => void out++ } }), "invalid_metadata");
  assert.equal(out, 1);
  assert.equal(pg.assigned.length, 0);
});
