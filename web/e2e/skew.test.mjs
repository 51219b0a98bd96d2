// Tabs on a machine whose clock is wrong (the page clock off the server's
// by +1 h, −1 h, +20 min), in Chromium against a real tokend with its
// default 300 s access tokens: skew must not change how often the tabs
// refresh. The page clock is Playwright's, installed at the wrong time; it
// then runs at real speed, and the test watches the tabs for WINDOW_MS.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { ACCESS_TTL, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;
const WINDOW_MS = 30_000;
const OFFSETS = { "+1 h": 3600_000, "−1 h": -3600_000, "+20 min": 1200_000 };

const pageTokens = (t) => ({ access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in, token_type: t.token_type });

describe("two tabs with a wrong clock", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  test(`page clock ${Object.keys(OFFSETS).join(", ")} off, ${WINDOW_MS / 1000} s after a refresh: at most one rotation per ${ACCESS_TTL} s token, no reuse`, { timeout: WINDOW_MS + 30_000 }, async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    // The three logins run side by side; each is counted by its own tabs' token requests.
    const runs = await Promise.all(Object.entries(OFFSETS).map(async ([name, offset]) => {
      const ctx = await stack.browser.newContext();
      t.after(() => ctx.close());
      await ctx.clock.install({ time: Date.now() + offset });
      const minted = await stack.mint(`skew${name}`, "spa", 0);
      const tabs = [await stack.open(ctx), await stack.open(ctx)];
      for (const p of tabs) {
        await p.evaluate(({ auth, tokens }) => window.h.start({ auth, clientId: "spa", tokens }), { auth: stack.origins.auth, tokens: pageTokens(minted) });
      }
      return { name, offset, tabs };
    }));
    const r0 = await stack.rotations();
    // One refresh in tab A (its app forces one): the other tab adopts its broadcast.
    for (const run of runs) {
      const r = await run.tabs[0].evaluate(() => window.h.refresh());
      assert.ok(r.token, `${run.name}: A's refresh: ${r.error}`);
      run.start = { real: Date.now(), page: await run.tabs[0].evaluate(() => Date.now()) };
    }
    await new Promise((r) => setTimeout(r, WINDOW_MS)); // the window watched, not a wait for an event
    const r1 = await stack.rotations();

    const got = {}, want = {};
    for (const run of runs) {
      const pageNow = await run.tabs[0].evaluate(() => Date.now());
      const realMs = Date.now() - run.start.real;
      const requests = await Promise.all(run.tabs.map((p) => p.evaluate(() => window.h.state.tokenRequests)));
      const calls = (await Promise.all(run.tabs.map((p) => p.evaluate(() => window.h.burst(2))))).flat();
      got[run.name] = {
        clockOff: Math.abs(pageNow - Date.now() - run.offset) < 5_000 && Math.abs(pageNow - run.start.page - realMs) < 5_000 ? "as set, at real speed" : `${pageNow - Date.now()} ms`,
        extraRefreshes: requests.reduce((a, b) => a + b, 0) - 1, // less A's forced one
        reauth: await Promise.all(run.tabs.map((p) => p.evaluate(() => window.h.state.reauth))),
        statuses: calls.map((c) => c.status),
      };
      const capped = Math.min(got[run.name].extraRefreshes, 1);
      want[run.name] = { clockOff: "as set, at real speed", extraRefreshes: capped, reauth: [0, 0], statuses: [200, 200, 200, 200] };
      if (got[run.name].extraRefreshes > 1) want[run.name].extraRefreshes = "≤ 1";
    }
    got.reuse = r1.reuse_detected - r0.reuse_detected;
    want.reuse = 0;
    got.rotated = r1.rotated - r0.rotated;
    want.rotated = got.rotated <= 2 * runs.length ? got.rotated : `≤ ${2 * runs.length}`;
    assert.deepEqual(got, want, `rotations in ${WINDOW_MS / 1000} s: ${got.rotated} (${(got.rotated / (WINDOW_MS / 1000)).toFixed(1)}/s)`);
  });
});
