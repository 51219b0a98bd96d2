// A tab that sleeps through rotations (paused in the debugger)
// while another tab of the same login refreshes, in Chromium against a real
// tokend: on waking it must catch up with the current tokens before it
// spends a refresh token, whatever the storage mode. Real time: the tokens
// live 300 s and tab A rotates on demand (refresh()), so no clock moves.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

const pageTokens = (t) => ({ access_token: t.access_token, refresh_token: t.refresh_token, expires_in: t.expires_in, token_type: t.token_type });

/**
 * Puts tab B to sleep: its script stops in the debugger (no timers, no
 * message delivery: the broadcasts sent meanwhile never reach it). Returns
 * the function that wakes it. (Page.setWebLifecycleState "frozen" would be
 * the other way, but headless Chromium does not freeze a visible page.)
 */
async function pause(cdp) {
  await cdp.send("Debugger.enable");
  const paused = new Promise((r) => cdp.once("Debugger.paused", r));
  await cdp.send("Debugger.pause");
  // An idle page pauses at its next statement: run one, left pending until the resume.
  const pending = cdp.send("Runtime.evaluate", { expression: "0" }).catch(() => {});
  await paused;
  return async () => {
    await cdp.send("Debugger.resume");
    await pending;
    await cdp.send("Debugger.disable");
  };
}

const CASES = [];
for (const storage of ["memory", "session", "local"]) {
  for (const rotations of [1, 2, 5]) CASES.push({ storage, rotations });
}

describe("a tab asleep while another rotates", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  for (const { storage, rotations } of CASES) {
    test(`${storage} storage, ${rotations} rotation(s) while tab B is paused in the debugger: B catches up, no reuse, nobody logged out`, { timeout: 30_000 }, async (t) => {
      const why = needs(stack, "lib", "origins");
      if (why) return t.skip(why);
      const ctx = await stack.browser.newContext();
      t.after(() => ctx.close());
      const minted = await stack.mint(`sleeper-${storage}-${rotations}`, "spa", 0);
      const [a, b] = [await stack.open(ctx), await stack.open(ctx)];
      for (const p of [a, b]) {
        await p.evaluate(({ auth, tokens, storage }) => window.h.start({ auth, clientId: "spa", tokens, storage }), {
          auth: stack.origins.auth, tokens: pageTokens(minted), storage: storage === "memory" ? undefined : storage,
        });
      }
      await stack.reset();
      const r0 = await stack.rotations();

      const cdp = await ctx.newCDPSession(b);
      let wake = await pause(cdp);
      t.after(async () => wake && (await wake().catch(() => {})));
      const fromA = [];
      for (let i = 0; i < rotations; i++) {
        const r = await a.evaluate(() => window.h.refresh());
        assert.ok(r.token, `A's refresh ${i + 1}: ${r.error}`);
        fromA.push(r.token);
      }
      await wake();
      wake = null;

      // B's app finds the token it held rejected and asks for a fresh one.
      const refreshB = await b.evaluate((old) => window.h.refresh(old), minted.access_token);
      const callsB = await b.evaluate(() => window.h.burst(3));
      const callsA = await a.evaluate(() => window.h.burst(3));
      const [tokA, tokB] = await Promise.all([a, b].map((p) => p.evaluate(() => window.h.token())));
      // A's next scheduled refresh, brought forward: the login must still be alive.
      const nextA = await a.evaluate(() => window.h.refresh());
      const r1 = await stack.rotations();
      const current = fromA.at(-1);
      const which = (r) => (r.token === current ? "A's current token" : r.token === minted.access_token ? "the token B held" : fromA.includes(r.token) ? `A's token ${fromA.indexOf(r.token) + 1} of ${rotations}` : r.error ?? "another token");
      const got = {
        rotated: r1.rotated - r0.rotated - (nextA.token ? 1 : 0),
        reuse: r1.reuse_detected - r0.reuse_detected,
        reauth: await Promise.all([a, b].map((p) => p.evaluate(() => window.h.state.reauth))),
        refreshB: which(refreshB),
        statuses: [...callsA, ...callsB].map((r) => r.status),
        tokenA: which(tokA),
        tokenB: which(tokB),
        nextA: nextA.token ? "rotated" : nextA.error,
      };
      assert.deepEqual(got, {
        rotated: rotations, reuse: 0, reauth: [0, 0], refreshB: "A's current token",
        statuses: Array(6).fill(200), tokenA: "A's current token", tokenB: "A's current token", nextA: "rotated",
      }, `repeated: ${r1.repeated - r0.repeated}`);
    });
  }
});
