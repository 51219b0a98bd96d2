// Cookie mode (web.md, "Cookie mode"): the refresh token lives only in
// tokend's HttpOnly __Host- cookie, and only the client's own origin, with
// X-Tokend, can use it.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;
const COOKIE = "__Host-tokend-rt";

describe("cookie mode", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  test("e. the refresh token never reaches script; another origin cannot refresh with the cookie", async (t) => {
    const why = needs(stack, "lib", "origins", "cookie");
    if (why) return t.skip(why);
    const ctx = await stack.browser.newContext();
    t.after(() => ctx.close());
    await ctx.clock.install({ time: Date.now() });
    const minted = await stack.mint("erin", "spa-cookie", 600);
    assert.ok(minted.refresh_token, "the backend gets the first refresh token, to hand to the page once");

    const page = await stack.open(ctx);
    const bodies = [];
    page.on("response", async (res) => {
      if (res.request().method() === "POST" && res.url() === stack.origins.auth + "/oauth/token") bodies.push(await res.json().catch(() => ({ unreadable: true })));
    });
    await page.evaluate(({ auth, tokens }) => window.h.start({ auth, clientId: "spa-cookie", cookie: true, storage: "session", tokens }),
      { auth: stack.origins.auth, tokens: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: minted.expires_in, token_type: "Bearer" } });
    await stack.reset();
    const r0 = await stack.rotations();

    // First exchange (refresh_token parameter), then one from the cookie.
    for (let round = 1; round <= 2; round++) {
      await ctx.clock.setSystemTime(Date.now() + round * 1000 * 1000);
      const res = await page.evaluate(() => window.h.burst(2));
      assert.deepEqual(res.map((r) => r.status), [200, 200], `round ${round}`);
      assert.equal(await page.evaluate(() => document.cookie), "", "document.cookie shows nothing");
    }
    assert.equal((await stack.rotations()).rotated - r0.rotated, 2);
    const posts = (await stack.authLog()).filter((e) => e.method === "POST" && e.path === "/oauth/token");
    assert.deepEqual(posts.map((e) => [e.refresh_param, e.cookie, e.x_tokend, e.origin, e.status]), [
      [true, false, posts[0].x_tokend, stack.origins.app, 200],
      [false, true, "1", stack.origins.app, 200],
    ]);
    for (const e of posts) assert.match(e.set_cookie, /^__Host-tokend-rt=…; Path=\/; Max-Age=\d+; HttpOnly; Secure; SameSite=Strict$/);
    assert.equal(bodies.length, 2);
    assert.ok(bodies.every((b) => !("refresh_token" in b) && typeof b.access_token === "string"), "no token response the page sees has refresh_token");
    const stored = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes(minted.refresh_token) && !stored.includes("refresh_token\":\""), "the page keeps no refresh token");
    const jar = (await ctx.cookies(stack.origins.auth)).find((c) => c.name === COOKIE);
    assert.deepEqual([jar.httpOnly, jar.secure, jar.sameSite, jar.path], [true, true, "Strict", "/"]);

    // The other origin shares the site (localhost), so the browser would
    // attach the Strict cookie: tokend must refuse on Origin and X-Tokend.
    await stack.reset();
    const other = await stack.open(ctx, "other");
    const form = "grant_type=refresh_token&client_id=spa-cookie";
    const withHeader = await other.evaluate(async ({ auth, form }) => {
      try {
        const res = await fetch(auth + "/oauth/token", { method: "POST", credentials: "include", headers: { "content-type": "application/x-www-form-urlencoded", "x-tokend": "1" }, body: form });
        return "answered " + res.status;
      } catch (e) {
        return e.name;
      }
    }, { auth: stack.origins.auth, form });
    assert.equal(withHeader, "TypeError", "the preflight from a disallowed origin gets no CORS grant");
    const simple = await other.evaluate(async ({ auth, form }) => {
      const res = await fetch(auth + "/oauth/token", { method: "POST", mode: "no-cors", credentials: "include", headers: { "content-type": "application/x-www-form-urlencoded" }, body: form });
      return res.type;
    }, { auth: stack.origins.auth, form });
    assert.equal(simple, "opaque");
    // The opaque answer can reach the page before the proxy has finished
    // the request: the log is read once none is in flight.
    const log = (await stack.authLog({ settled: true })).filter((e) => e.path === "/oauth/token");
    const preflight = log.filter((e) => e.method === "OPTIONS");
    const refused = log.filter((e) => e.method === "POST");
    assert.equal(preflight.length, 1, "one preflight");
    assert.deepEqual(refused.map((e) => [e.origin, e.cookie]), [[stack.origins.other, true]], "only the simple POST went out, with the cookie");
    assert.ok([400, 401].includes(refused[0].status), `refused with ${refused[0].status}`);
    assert.equal(refused[0].set_cookie, "", "no cookie set for the other origin");
    assert.equal((await stack.rotations()).rotated - r0.rotated, 2, "no rotation from the other origin");
    const still = (await ctx.cookies(stack.origins.auth)).find((c) => c.name === COOKIE);
    assert.equal(still.value, jar.value, "the cookie is unchanged");
  });
});
