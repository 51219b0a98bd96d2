// README.md's "Browser apps" example, followed as written (pages/readme.js):
// the page's backend mints {"subject":"alice","client_id":"spa"} at tokend
// on every page load, without force, and the page starts a TokenManager
// with the answer. Reloads within the first half of the access token's
// life (when tokend used to answer a repeated mint with the cached access
// token and no refresh token), and two tabs loading at once, in every
// storage mode: nobody reaches onReauthRequired and the API calls succeed,
// before and after the page's clock passes the token's expiry.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ACCESS_TTL, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;
const RELOADS = 3;

const MODES = [
  { name: "memory", query: {} },
  { name: "session", query: { storage: "session" } },
  { name: "local", query: { storage: "local" } },
  { name: "cookie", query: { client: "spa-cookie", cookie: "1" }, needs: ["cookie"] },
];

describe("the README's browser app: reloads never log anyone out", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  const url = (mode) => `${stack.origins.app}/readme.html?` + new URLSearchParams({ auth: stack.origins.auth, ...mode.query });

  /** Waits for the page's load to finish and returns what it saw. */
  async function loaded(page) {
    await page.waitForFunction(() => window.result?.loaded === true);
    return page.evaluate(() => window.result);
  }

  /** A load went well: its mint started a new login (a refresh token, a session not seen before), the API call was 200 for alice. */
  function assertLoad(r, sessions, what) {
    assert.deepEqual({ error: r.error, status: r.status, subject: r.subject, reauth: r.reauth, mintedRefreshToken: r.mintedRefreshToken },
      { error: undefined, status: 200, subject: "alice", reauth: 0, mintedRefreshToken: true }, what);
    assert.ok(!sessions.has(r.session), `${what}: a new session, not ${r.session} again`);
    sessions.add(r.session);
  }

  /** The page clock passes the minted tokens' expiry; every page calls the API again, which needs a refresh. */
  async function afterExpiry(ctx, pages, what) {
    const pageNow = await pages[0].evaluate(() => Date.now());
    await ctx.clock.setSystemTime(pageNow + (ACCESS_TTL + 60) * 1000);
    const calls = await Promise.all(pages.map((p) => p.evaluate(() => window.call())));
    assert.deepEqual(calls, pages.map(() => ({ status: 200, subject: "alice" })), `${what}: API calls after the expiry`);
    const reauth = await Promise.all(pages.map((p) => p.evaluate(() => window.result.reauth)));
    assert.deepEqual(reauth, pages.map(() => 0), `${what}: onReauthRequired calls`);
  }

  for (const mode of MODES) {
    test(`${mode.name}: ${RELOADS} reloads within the first half of the token's life, then two tabs loading at once`, async (t) => {
      const why = needs(stack, "lib", "origins", ...(mode.needs ?? []));
      if (why) return t.skip(why);
      const started = Date.now();
      const ctx = await stack.browser.newContext();
      t.after(() => ctx.close());
      await ctx.clock.install({ time: Date.now() });
      await stack.reset();
      const r0 = await stack.rotations();
      const sessions = new Set();

      const page = await ctx.newPage();
      await page.goto(url(mode));
      assertLoad(await loaded(page), sessions, "first load");
      for (let i = 1; i <= RELOADS; i++) {
        await page.reload();
        assertLoad(await loaded(page), sessions, `reload ${i}`);
      }
      assert.ok(Date.now() - started < (ACCESS_TTL * 1000) / 2, "the reloads came within the first half of the token's life");
      await afterExpiry(ctx, [page], "after the reloads");
      await page.close();

      // Two tabs load at once, twice.
      const tabs = await Promise.all([ctx.newPage(), ctx.newPage()]);
      for (const round of [1, 2]) {
        await Promise.all(tabs.map((p) => (round === 1 ? p.goto(url(mode)) : p.reload())));
        const results = await Promise.all(tabs.map(loaded));
        results.forEach((r, i) => assertLoad(r, sessions, `two tabs, round ${round}, tab ${i + 1}`));
      }
      await afterExpiry(ctx, tabs, "two tabs");

      const backend = await stack.backendLog();
      assert.deepEqual(backend.statuses, Array(RELOADS + 1 + 4).fill(200), "every page load minted once, each 200");
      const r1 = await stack.rotations();
      assert.equal(r1.reuse_detected - r0.reuse_detected, 0, "no refresh token was presented twice");
      assert.ok(r1.rotated - r0.rotated >= 2, `refreshes after the expiry: ${r1.rotated - r0.rotated}`);
    });
  }
});
