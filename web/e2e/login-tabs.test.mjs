// After a login through tokend's page (login-app.mjs, pages/login-app.js),
// 4 more tabs of the app with the same storage mode (local) share one
// refresh once the token expires on the page clock, as tokens.test.mjs's
// tabs of a minted login do.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { loginApp, tokenPosts } from "./login-app.mjs";
import { ACCESS_TTL, LOGIN_USER, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

describe("after the login: tabs", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());
  let browser, openApp, formLogin;
  before(() => ({ browser, openApp, formLogin } = loginApp(stack)));

  test("5 tabs after one login share one refresh", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t, { clock: true });
    const { page } = await formLogin(ctx, "a", "local");
    const tabs = [page];
    for (let i = 0; i < 4; i++) tabs.push(await openApp(ctx, "a", "local"));
    await stack.reset();
    const r0 = await stack.rotations();
    const now = await page.evaluate(() => Date.now());
    await ctx.clock.setSystemTime(now + (ACCESS_TTL + 100) * 1000);
    const calls = (await Promise.all(tabs.map((p) => p.evaluate(() => Promise.all([1, 2, 3].map(() => window.app.call())))))).flat();
    assert.deepEqual(calls, Array(15).fill({ status: 200, subject: LOGIN_USER.name }));
    const log = await stack.authLog({ settled: true });
    assert.deepEqual(tokenPosts(log, "refresh_token").map((e) => e.status), [200], "exactly one refresh reached tokend");
    const r1 = await stack.rotations();
    assert.deepEqual({ rotated: r1.rotated - r0.rotated, reuse: r1.reuse_detected - r0.reuse_detected }, { rotated: 1, reuse: 0 });
    assert.deepEqual(await Promise.all(tabs.map((p) => p.evaluate(() => window.app.result.reauth))), [0, 0, 0, 0, 0]);
    assert.equal(tokenPosts(log, "authorization_code").length + log.filter((e) => e.path === "/oauth/authorize").length, 0, "the 4 new tabs did not log in");
  });
});
