// OAuthError: what every endpoint the manager calls (token, revocation)
// answered, as fields a program can act on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, OAuthError, ReauthRequiredError, TokenRefreshError } from "../dist/index.js";
import { API, REVOKE, TOKEN, fakeServer, json } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
const LOGIN = { access_token: "at0", refresh_token: "rt0", expires_in: 3600 };

/** A manager whose revocation endpoint answers with revokeReply (else 200). */
function setup(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const s = { srv, revokeReply: null, reauth: [] };
  const fetch = (input, init) => (String(input) === REVOKE && s.revokeReply ? s.revokeReply() : srv.fetch(input, init));
  s.m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", apiOrigins: [API], fetch, random: () => 0, events: null, crossTab: false, onReauthRequired: (e) => s.reauth.push(e), ...opts });
  t.after(() => s.m.close());
  return s;
}

/** Asserts e is an OAuthError with exactly these fields. */
function assertOAuth(e, want) {
  assert.ok(e instanceof OAuthError, String(e));
  assert.equal(e.name, "OAuthError");
  assert.deepEqual(
    { status: e.status, error: e.error, error_description: e.error_description, retryAfterMs: e.retryAfterMs },
    { status: undefined, error: undefined, error_description: undefined, retryAfterMs: undefined, ...want },
  );
}

for (const [status, error, description] of [
  [400, "invalid_grant", "refresh token reused"],
  [401, "invalid_client", "client authentication failed"],
  [400, "invalid_request", "origin not allowed"],
]) {
  test(`terminal ${status} ${error}: ReauthRequiredError whose cause is the OAuthError, in every rejection and in onReauthRequired`, async (t) => {
    const { srv, m, reauth } = setup(t);
    srv.tokenReply = () => json(status, { error, error_description: description });
    m.start(LOGIN);
    const want = { status, error, error_description: description };
    const first = await m.refresh().catch((e) => e);
    assert.ok(first instanceof ReauthRequiredError, String(first));
    assertOAuth(first.cause, want);
    assert.equal(first.cause.message, `tokend: token endpoint answered HTTP ${status} ${error}`);
    for (const later of [await m.getAccessToken().catch((e) => e), await m.refresh("at0").catch((e) => e)]) {
      assert.ok(later instanceof ReauthRequiredError);
      assert.equal(later.cause, first.cause, "the same cause");
    }
    assert.equal(reauth.length, 1);
    assert.ok(reauth[0] instanceof ReauthRequiredError);
    assert.equal(reauth[0].cause, first.cause);
    // A new login forgets the cause.
    srv.tokenReply = null;
    m.start(LOGIN);
    assert.equal(await m.refresh(), "at1");
  });
}

test("a logout's ReauthRequiredError has no cause", async (t) => {
  const { m } = setup(t);
  m.start(LOGIN);
  await m.logout();
  const e = await m.getAccessToken().catch((e) => e);
  assert.ok(e instanceof ReauthRequiredError);
  assert.equal(e.cause, undefined);
});

test("no refresh token: ReauthRequiredError without a cause (no endpoint answered)", async (t) => {
  const { m, reauth } = setup(t);
  const e = await m.getAccessToken().catch((e) => e);
  assert.ok(e instanceof ReauthRequiredError);
  assert.equal(e.cause, undefined);
  assert.equal(reauth[0].cause, undefined);
});

for (const [name, reply, want] of [
  ["503 with an OAuth body and Retry-After", () => json(503, { error: "temporarily_unavailable", error_description: "the store is unavailable; retry later" }, { "Retry-After": "5" }), { status: 503, error: "temporarily_unavailable", error_description: "the store is unavailable; retry later", retryAfterMs: 5_000 }],
  ["429 with Retry-After", () => json(429, { error: "temporarily_unavailable" }, { "Retry-After": "2" }), { status: 429, error: "temporarily_unavailable", retryAfterMs: 2_000 }],
  ["502 from a proxy, not JSON", () => new Response("<html>bad gateway</html>", { status: 502 }), { status: 502 }],
  ["500 whose fields are not strings", () => json(500, { error: 42, error_description: ["x"] }), { status: 500 }],
  ["200 without an access token", () => json(200, { token_type: "Bearer" }), { status: 200 }],
]) {
  test(`transient token endpoint answer, ${name}: refresh() rejects with an OAuthError carrying it`, async (t) => {
    const { srv, m, reauth } = setup(t);
    srv.tokenReply = reply;
    m.start(LOGIN);
    const e = await m.refresh().catch((e) => e);
    assertOAuth(e, want);
    assert.ok(e instanceof TokenRefreshError, "the former name still matches");
    assert.equal(await m.refresh().catch((e) => e), e, "the same error during the backoff");
    assert.equal(reauth.length, 0);
  });
}

test("token endpoint unreachable: OAuthError without status, the network error as cause", async (t) => {
  const { srv, m } = setup(t);
  const net = new TypeError("fetch failed");
  srv.tokenReply = () => Promise.reject(net);
  m.start(LOGIN);
  const e = await m.refresh().catch((e) => e);
  assertOAuth(e, {});
  assert.equal(e.message, "tokend: token endpoint unreachable");
  assert.equal(e.cause, net);
});

for (const [name, reply, want] of [
  ["503 with Retry-After", () => json(503, { error: "temporarily_unavailable", error_description: "retry later" }, { "Retry-After": "7" }), { status: 503, error: "temporarily_unavailable", error_description: "retry later", retryAfterMs: 7_000 }],
  ["401 invalid_client", () => json(401, { error: "invalid_client" }), { status: 401, error: "invalid_client" }],
  ["400 unsupported_token_type", () => json(400, { error: "unsupported_token_type" }), { status: 400, error: "unsupported_token_type" }],
  ["500 not JSON", () => new Response("oops", { status: 500 }), { status: 500 }],
]) {
  test(`logout: the revocation endpoint's ${name} rejects with an OAuthError carrying it; the tokens are gone anyway`, async (t) => {
    const s = setup(t);
    s.revokeReply = reply;
    s.m.start(LOGIN);
    const e = await s.m.logout().catch((e) => e);
    assertOAuth(e, want);
    assert.ok(e.message.startsWith(`tokend: revocation endpoint answered HTTP ${want.status}`), e.message);
    await assert.rejects(s.m.getAccessToken(), ReauthRequiredError);
  });
}

test("logout: revocation endpoint unreachable rejects with an OAuthError, the network error as cause", async (t) => {
  const s = setup(t);
  const net = new TypeError("fetch failed");
  s.revokeReply = () => Promise.reject(net);
  s.m.start(LOGIN);
  const e = await s.m.logout().catch((e) => e);
  assertOAuth(e, {});
  assert.equal(e.message, "tokend: revocation endpoint unreachable");
  assert.equal(e.cause, net);
});

test("TokenRefreshError is OAuthError's former name", () => {
  assert.equal(TokenRefreshError, OAuthError);
  const e = new OAuthError("m", { status: 503, error: "temporarily_unavailable", retryAfterMs: 1_000 });
  assert.ok(e instanceof TokenRefreshError && e instanceof Error);
  assert.equal(e.status, 503);
});
