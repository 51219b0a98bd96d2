// TokenManager across tabs, in Chromium, against a real tokend (contract:
// ../../brief web.md, "The npm package web/"). The page clock (Playwright's
// fake clock on the browser context) stands for waiting: no real sleeps.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, fingerprint, needs, startStack, until } from "./setup.mjs";

const skip = browserMissing() || false;
const MINT_TTL = 600; // seconds: the minted access token outlives the test unless the page clock moves

/** The token fields a backend hands to the page (no session_id). */
const pageTokens = (t) => ({ access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in, token_type: t.token_type });

describe("TokenManager in tabs", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  /** A fresh context with a fake clock and n tabs, each with a manager of the same minted login. */
  async function tabs(t, n, subject) {
    const ctx = await stack.browser.newContext();
    t.after(() => ctx.close());
    await ctx.clock.install({ time: Date.now() });
    const minted = await stack.mint(subject, "spa", MINT_TTL);
    const pages = [];
    for (let i = 0; i < n; i++) {
      const page = await stack.open(ctx);
      await page.evaluate(({ auth, tokens }) => window.h.start({ auth, clientId: "spa", tokens }), { auth: stack.origins.auth, tokens: pageTokens(minted) });
      pages.push(page);
    }
    return { ctx, pages, minted };
  }

  /** Moves every tab's Date past the minted token's expiry without firing timers (a laptop waking up). */
  async function expire(ctx, seconds = MINT_TTL + 100) {
    await ctx.clock.setSystemTime(Date.now() + seconds * 1000);
  }

  const tokenPosts = (log) => log.filter((e) => e.method === "POST" && e.path === "/oauth/token");

  test("a. 5 tabs × 10 calls with an expired token: exactly 1 rotation, 50 × 200", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const { ctx, pages, minted } = await tabs(t, 5, "alice");
    await stack.reset();
    const r0 = await stack.rotations();
    await expire(ctx);
    const results = (await Promise.all(pages.map((p) => p.evaluate(() => window.h.burst(10))))).flat();
    const r1 = await stack.rotations();

    assert.equal(results.length, 50);
    assert.deepEqual(results.filter((r) => r.status !== 200), [], "every call 200");
    assert.ok(results.every((r) => r.body.subject === "alice"));
    assert.deepEqual({ rotated: r1.rotated - r0.rotated, repeated: r1.repeated - r0.repeated, reuse: r1.reuse_detected - r0.reuse_detected }, { rotated: 1, repeated: 0, reuse: 0 });
    assert.equal(tokenPosts(await stack.authLog()).length, 1, "one token request reached tokend");
    const sent = await Promise.all(pages.map((p) => p.evaluate(() => window.h.state.tokenRequests)));
    assert.equal(sent.reduce((a, b) => a + b, 0), 1, `token requests per tab: ${sent}`);
    const api = await stack.apiLog();
    assert.equal(api.length, 50, "no call was replayed");
    const fps = new Set(api.map((e) => e.token_fp));
    assert.equal(fps.size, 1, "all 50 calls carried the one new token");
    assert.ok(!fps.has(fingerprint(minted.access_token)), "none carried the expired token");
  });

  test("b. the tab holding the refresh lock closes mid-refresh: another tab completes it, nobody must log in again", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const { ctx, pages } = await tabs(t, 3, "bob");
    await stack.reset();
    const r0 = await stack.rotations();
    // tokend rotates at once; the proxy holds the answer until the tab is gone.
    await stack.slow(30_000, "after");
    await expire(ctx);
    const bursts = pages.map((p) => p.evaluate(() => window.h.burst(3)).catch((e) => ({ closed: String(e) })));
    const holder = await until(async () => {
      const inflight = await Promise.all(pages.map((p) => p.evaluate(() => window.h.state.tokenInFlight)));
      const busy = inflight.flatMap((n, i) => (n > 0 ? [i] : []));
      return busy.length > 0 && busy;
    }, "a tab to send its refresh");
    assert.equal(holder.length, 1, "one tab refreshes, the others wait for the lock");
    await until(async () => (await stack.rotations()).rotated === r0.rotated + 1, "tokend to rotate the held refresh");
    await stack.slow(0);
    await pages[holder[0]].close();
    const rest = pages.filter((_, i) => i !== holder[0]);
    const results = (await Promise.all(bursts.filter((_, i) => i !== holder[0]))).flat();
    assert.deepEqual(results.map((r) => r.status), Array(6).fill(200));
    assert.deepEqual(await Promise.all(rest.map((p) => p.evaluate(() => window.h.state.reauth))), [0, 0]);
    const r1 = await stack.rotations();
    // The second tab presents the same refresh token within the grace
    // window and gets the successor the closed tab never saw.
    assert.deepEqual({ rotated: r1.rotated - r0.rotated, repeated: r1.repeated - r0.repeated, reuse: r1.reuse_detected - r0.reuse_detected }, { rotated: 1, repeated: 1, reuse: 0 });
    const again = (await Promise.all(rest.map((p) => p.evaluate(() => window.h.burst(5))))).flat();
    assert.deepEqual(again.map((r) => r.status), Array(10).fill(200));
  });

  test("c. the page clock jumps 2 h: the next call never carries the expired token", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const { ctx, pages, minted } = await tabs(t, 1, "carol");
    const [page] = pages;
    await stack.reset();
    const first = await page.evaluate(() => window.h.burst(1));
    assert.equal(first[0].status, 200);
    const r0 = await stack.rotations();
    await ctx.clock.setSystemTime(Date.now() + 2 * 3600 * 1000);
    const next = await page.evaluate(() => window.h.burst(3));
    assert.deepEqual(next.map((r) => r.status), [200, 200, 200]);
    const api = await stack.apiLog();
    const old = fingerprint(minted.access_token);
    assert.deepEqual(api.map((e) => e.status), [200, 200, 200, 200], "the API saw no 401");
    assert.equal(api[0].token_fp, old, "before the jump the minted token was used");
    assert.ok(api.slice(1).every((e) => e.token_fp !== old && e.token_fp === api[1].token_fp), "after the jump only the new token");
    assert.equal((await stack.rotations()).rotated - r0.rotated, 1);
  });

  test("d. the login is revoked at the server: onReauthRequired once per tab, no refresh loop", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const { ctx, pages, minted } = await tabs(t, 3, "dave");
    await stack.revokeSession(minted.session_id);
    await stack.reset();
    await expire(ctx);
    const results = (await Promise.all(pages.map((p) => p.evaluate(() => window.h.burst(3))))).flat();
    assert.deepEqual(results.map((r) => [r.status, r.reauth]), Array(9).fill([0, true]), "every call rejects with ReauthRequiredError");
    const again = (await Promise.all(pages.map((p) => p.evaluate(() => window.h.burst(2))))).flat();
    assert.deepEqual(again.map((r) => [r.status, r.reauth]), Array(6).fill([0, true]));
    assert.deepEqual(await Promise.all(pages.map((p) => p.evaluate(() => window.h.state.reauth))), [1, 1, 1]);
    const perTab = await Promise.all(pages.map((p) => p.evaluate(() => window.h.state.tokenRequests)));
    assert.ok(perTab.every((n) => n <= 1), `token requests per tab ≤ 1: ${perTab}`);
    const posts = tokenPosts(await stack.authLog());
    assert.ok(posts.length >= 1 && posts.length <= 3, `token requests at tokend: ${posts.length}`);
    assert.ok(posts.every((e) => e.status === 400), "each refused with invalid_grant (400)");
    assert.equal((await stack.apiLog()).length, 0, "no API call went out without a token");
  });
});
