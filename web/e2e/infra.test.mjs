// The harness itself, in Chromium, against a real tokend: what every other
// e2e test stands on. Needs neither the web package nor the websrv branch.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, fingerprint, startStack, until } from "./setup.mjs";

const skip = browserMissing() || false;

describe("harness", { skip }, () => {
  let stack, ctx, page;
  before(async () => {
    stack = await startStack();
    await stack.launch();
    ctx = await stack.browser.newContext();
    page = await stack.open(ctx);
  });
  after(async () => stack?.stop());

  test("a minted token passes the API's verify; none and a bad one get 401", async () => {
    await stack.reset();
    const t = await stack.mint("alice");
    assert.equal(t.token_type, "Bearer");
    assert.ok(t.refresh_token, "a forced mint returns a refresh token");
    const ok = await page.evaluate((tok) => window.h.plain(tok), t.access_token);
    assert.equal(ok.status, 200);
    assert.equal(JSON.parse(ok.body).subject, "alice");
    const bad = await page.evaluate(() => window.h.plain("not-a-token"));
    assert.equal(bad.status, 401);
    const none = await page.evaluate(async () => (await fetch("/api/echo")).status);
    assert.equal(none, 401);
    const log = await stack.apiLog();
    assert.deepEqual(log.map((e) => [e.status, e.token_fp]), [[200, fingerprint(t.access_token)], [401, fingerprint("not-a-token")], [401, ""]]);
  });

  test("the proxy forwards refreshes untouched and counts them; /metrics counts the rotation", async () => {
    await stack.reset();
    const t = await stack.mint("bob");
    const before = await stack.rotations();
    const res = await fetch(stack.origins.auth + "/oauth/token", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://example.test" },
      body: new URLSearchParams({ grant_type: "refresh_token", client_id: "spa", refresh_token: t.refresh_token }),
    });
    assert.equal(res.status, stack.features.origins ? 401 : 200, "an Origin the client does not allow is refused once CORS exists");
    const afterR = await stack.rotations();
    assert.equal(afterR.rotated - before.rotated, stack.features.origins ? 0 : 1);
    const log = (await stack.authLog()).filter((e) => e.path === "/oauth/token");
    assert.equal(log.length, 1);
    assert.deepEqual(
      { m: log[0].method, p: log[0].path, o: log[0].origin, g: log[0].grant_type, c: log[0].client_id, r: log[0].refresh_param, d: log[0].done },
      { m: "POST", p: "/oauth/token", o: "http://example.test", g: "refresh_token", c: "spa", r: true, d: true },
    );
  });

  test("the token endpoint can be held: after forwarding, the rotation happens even if the caller leaves", async () => {
    await stack.reset();
    const t = await stack.mint("carol");
    const before = await stack.rotations();
    await stack.slow(60_000, "after");
    const ac = new AbortController();
    const pending = fetch(stack.origins.auth + "/oauth/token", {
      method: "POST", signal: ac.signal,
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", client_id: "spa", refresh_token: t.refresh_token }),
    }).catch((e) => e.name);
    await until(async () => (await stack.rotations()).rotated === before.rotated + 1, "the held refresh to rotate");
    ac.abort();
    assert.equal(await pending, "AbortError");
    const log = await until(async () => { const l = (await stack.authLog()).filter((e) => e.path === "/oauth/token"); return l[0]?.done && l; }, "the proxy to see the caller leave");
    assert.equal(log[0].canceled, true);
    await stack.slow(0);
  });

  test("Chromium keeps a Secure __Host- HttpOnly cookie from http://localhost and hides it from script", async () => {
    const set = await page.evaluate(async (auth) => (await fetch(auth + "/_harness/cookie-set", { credentials: "include" })).status, stack.origins.auth);
    assert.equal(set, 204);
    const got = await page.evaluate(async (auth) => (await fetch(auth + "/_harness/cookie-get", { credentials: "include" })).json(), stack.origins.auth);
    assert.deepEqual(got, { cookie: true });
    assert.equal(await page.evaluate(() => document.cookie), "");
    const cookies = await ctx.cookies(stack.origins.auth);
    const probe = cookies.find((c) => c.name === "__Host-harness-probe");
    assert.ok(probe, "cookie stored");
    assert.deepEqual([probe.secure, probe.httpOnly, probe.sameSite, probe.path], [true, true, "Strict", "/"]);
  });

  test("the test pages load on the other origin too", async () => {
    const other = await stack.open(ctx, "other");
    assert.equal(await other.evaluate(() => location.origin), stack.origins.other);
    await other.close();
  });
});
