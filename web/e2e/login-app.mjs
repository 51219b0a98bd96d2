// What the login tests (login*.test.mjs) do with the app of
// pages/login-app.js: open it, start login(), type on tokend's login page
// with the keyboard alone, land on the callback. Two apps: a (client
// login-a on the app origin) and b (login-b on app2), each registered by
// setup.mjs with its own origin and redirect URI; c is a in cookie mode
// (login-cookie).
import assert from "node:assert/strict";

import { LOGIN_CALLBACK, LOGIN_USER } from "./setup.mjs";

export const APPS = {
  a: { origin: "app", client: "login-a" },
  b: { origin: "app2", client: "login-b" },
  c: { origin: "app", client: "login-cookie", cookie: true },
};

/** Token-endpoint POSTs of the auth log with grant_type grant. */
export const tokenPosts = (log, grant) => log.filter((e) => e.method === "POST" && e.path === "/oauth/token" && e.grant_type === grant);

/** The helpers of the login tests, for stack (startStack's). */
export function loginApp(stack) {
  /** The app's page URL, with its settings in the query. */
  const appURL = (app, storage = "session") => `${stack.origins[APPS[app].origin]}/login-app.html?` +
    new URLSearchParams({ auth: stack.origins.auth, client: APPS[app].client, storage, ...(APPS[app].cookie && { cookie: "1" }) });

  /** Waits for the app's page to finish loading and returns what it saw. */
  async function loaded(page) {
    await page.waitForFunction(() => window.app?.result.loaded === true);
    return page.evaluate(() => window.app.result);
  }

  const h = {
    appURL,
    loaded,

    /** A fresh browser (cookies, storage), with a page clock if clock, closed after the test. */
    async browser(t, { clock = false } = {}) {
      const ctx = await stack.browser.newContext();
      t.after(() => ctx.close());
      if (clock) await ctx.clock.install({ time: Date.now() });
      return ctx;
    },

    /**
     * A new tab (ctx.newPage) that records the pages it rendered
     * (main-frame navigations answered with a document, not a redirect)
     * in page.rendered, and the CSP violations Chromium reported in
     * page.csp.
     */
    async tab(ctx) {
      const page = await ctx.newPage();
      page.rendered = [];
      page.csp = [];
      page.on("response", (r) => {
        if (r.request().isNavigationRequest() && r.frame() === page.mainFrame() && r.status() < 300) page.rendered.push({ url: r.url(), status: r.status() });
      });
      page.on("console", (m) => /Content Security Policy/i.test(m.text()) && page.csp.push(m.text()));
      page.on("pageerror", (e) => process.env.E2E_VERBOSE && console.error("pageerror:", e));
      return page;
    },

    /** A new tab of app's page with the storage mode, loaded. */
    async openApp(ctx, app, storage) {
      const page = await h.tab(ctx);
      await page.goto(appURL(app, storage));
      await loaded(page);
      return page;
    },

    /** Starts login() (which navigates away) with opts; marks the document, so that callback waits for another. */
    async startLogin(page, opts = {}) {
      await page.evaluate((o) => {
        window.leaving = true;
        void window.app.login(o);
      }, opts);
    },

    /** Waits for the browser to land on app's callback page (a new document) and returns what handleRedirect gave the app. */
    async callback(page, app) {
      await page.waitForURL((u) => u.href.startsWith(stack.origins[APPS[app].origin] + LOGIN_CALLBACK));
      await page.waitForFunction(() => !window.leaving && window.app?.result.loaded === true);
      return loaded(page);
    },

    /** Pages of tokend (the auth origin) that the tab rendered. */
    tokendPages: (page) => page.rendered.filter((r) => r.url.startsWith(stack.origins.auth + "/")),

    /** The login form is on screen: types the username, Tab, the password and Enter, with the keyboard only. */
    async typeLogin(page) {
      await page.waitForSelector("input#password");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "username", "the username field has the focus on arrival");
      await page.keyboard.type(LOGIN_USER.name);
      await page.keyboard.press("Tab");
      assert.equal(await page.evaluate(() => document.activeElement?.id), "password", "Tab moves to the password field");
      await page.keyboard.type(LOGIN_USER.password);
      await page.keyboard.press("Enter");
    },

    /** app's page in a new tab, login(), the form typed in: the tab and the callback's result. */
    async formLogin(ctx, app, storage) {
      const page = await h.openApp(ctx, app, storage);
      await h.startLogin(page);
      await h.typeLogin(page);
      const result = await h.callback(page, app);
      assert.equal(result.error, null, "handleRedirect succeeded");
      assert.equal(result.redirect.sub, LOGIN_USER.name);
      return { page, result };
    },

    /** Opens app's page and tries a login with prompt=none: the error handleRedirect surfaced (null if it logged in). */
    async silentLogin(ctx, app) {
      const page = await h.openApp(ctx, app);
      await h.startLogin(page, { prompt: "none" });
      const r = await h.callback(page, app);
      assert.deepEqual(h.tokendPages(page), [], "prompt=none: tokend rendered no page");
      await page.close();
      return r.error;
    },
  };
  return h;
}
