// g. What manager.fetch costs over a plain fetch with the header set by
// hand: 200 sequential GET /api/echo each, in one page, one run. A measure
// for bench/README.md, not a timed assertion.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;
const N = 200, BLOCK = 20;

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { n: s.length, median_ms: +q(0.5).toFixed(3), p95_ms: +q(0.95).toFixed(3) };
};

describe("latency", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  test("g. manager.fetch vs plain fetch, 200 sequential calls each", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const ctx = await stack.browser.newContext();
    t.after(() => ctx.close());
    const page = await stack.open(ctx);
    const minted = await stack.mint("grace", "spa", 600);
    await page.evaluate(({ auth, tokens }) => window.h.start({ auth, clientId: "spa", tokens }),
      { auth: stack.origins.auth, tokens: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: minted.expires_in, token_type: "Bearer" } });
    const token = await page.evaluate(() => window.h.manager.getAccessToken());
    assert.equal(token, minted.access_token);
    // Warm both paths, then alternate blocks so that drift hits both alike.
    for (const kind of ["manager", "plain"]) await page.evaluate(({ kind, n, tok }) => window.h.timeCalls(kind, n, tok), { kind, n: BLOCK, tok: token });
    const res = { manager: [], plain: [] };
    for (let i = 0; i < N / BLOCK; i++) {
      for (const kind of i % 2 ? ["plain", "manager"] : ["manager", "plain"]) {
        res[kind].push(...(await page.evaluate(({ kind, n, tok }) => window.h.timeCalls(kind, n, tok), { kind, n: BLOCK, tok: token })));
      }
    }
    assert.ok([...res.manager, ...res.plain].every((r) => r.status === 200));
    assert.equal(await page.evaluate(() => window.h.state.tokenRequests), 0, "no refresh during the measure");
    const m = stats(res.manager.map((r) => r.ms)), p = stats(res.plain.map((r) => r.ms));
    assert.equal(m.n, N);
    t.diagnostic(`latency manager.fetch: median ${m.median_ms} ms, p95 ${m.p95_ms} ms (n=${m.n})`);
    t.diagnostic(`latency plain fetch:   median ${p.median_ms} ms, p95 ${p.p95_ms} ms (n=${p.n})`);
    t.diagnostic(`latency overhead: median ${(m.median_ms - p.median_ms).toFixed(3)} ms, p95 ${(m.p95_ms - p.p95_ms).toFixed(3)} ms`);
  });
});
