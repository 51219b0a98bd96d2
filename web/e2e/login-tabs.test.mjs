// After a login through tokend's page (login-app.mjs, pages/login-app.js):
// reloads of the callback and of the app page never log the user out (the
// callback URL was cleaned; the manager finds its tokens in session or
// local storage; no invalid_state reaches the app), and 5 tabs of the app
// share one refresh once the token expires on the page clock.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { loginApp, tokenPosts } from "./login-app.mjs";
import { ACCESS_TTL, LOGIN_USER, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

describe("after the login: reloads and tabs", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());
  let loaded, browser, openApp, formLogin;
  before(() => ({ loaded, browser, openApp, formLogin } = loginApp(stack)));

  for (const storage of ["session", "local"]) {
    test(`${storage} storage: reloads after the login (callback, then the app page) never log the user out`, async (t) => {
      const why = needs(stack, "lib", "origins", "login");
      if (why) return t.skip(why);
      const ctx = await browser(t, { clock: true });
      const { page, result } = await formLogin(ctx, "a", storage);
      assert.equal(new URL(page.url()).search, "", "the callback URL was cleaned");
      await stack.reset();

      await page.reload();
      let r = await loaded(page);
      assert.deepEqual({ error: r.error, redirect: r.redirect, reauth: r.reauth }, { error: null, redirect: null, reauth: 0 }, "reload of the callback: nothing to finish, no invalid_state");
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });

      await page.goto(stack.origins.app + result.redirect.returnTo);
      r = await loaded(page);
      assert.deepEqual({ error: r.error, reauth: r.reauth }, { error: null, reauth: 0 });
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
      await page.reload();
      r = await loaded(page);
      assert.deepEqual({ error: r.error, reauth: r.reauth }, { error: null, reauth: 0 }, "reload of the app page");
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });

      let log = await stack.authLog({ settled: true });
      assert.deepEqual(log.filter((e) => e.path === "/oauth/authorize" || e.path === "/oauth/token").map((e) => e.path), [], "no new login, no token request: the stored tokens served");

      // Past the access token's expiry the stored refresh token still works.
      const now = await page.evaluate(() => Date.now());
      await ctx.clock.setSystemTime(now + (ACCESS_TTL + 60) * 1000);
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
      log = await stack.authLog({ settled: true });
      assert.deepEqual(tokenPosts(log, "refresh_token").map((e) => e.status), [200]);
      assert.equal(await page.evaluate(() => window.app.result.reauth), 0);
    });
  }

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
