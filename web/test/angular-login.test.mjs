// The Angular login routes with the real Router (JIT, zoneless, mock
// location): a guarded route starts the login with its URL to return to,
// the callback route finishes it and goes back there, and a reload of the
// callback goes to the fallback.
import "@angular/compiler";
import { test } from "node:test";
import assert from "node:assert/strict";
import { Injector, createEnvironmentInjector, provideZonelessChangeDetection, ɵConsole as Console, ɵINJECTOR_SCOPE as INJECTOR_SCOPE } from "@angular/core";
import { DOCUMENT } from "@angular/common";
import { provideLocationMocks } from "@angular/common/testing";
import { Router, provideRouter } from "@angular/router";
import { TokenManager } from "../dist/index.js";
import { loginCallback, loginGuard } from "../dist/angular-login.js";
import { fakePage, fakeProvider, fakeStorage } from "./helpers.mjs";

/** A Router as an application has it; the document is a stand-in (the router sets its title). */
function app(t, routes) {
  const env = createEnvironmentInjector(
    [{ provide: INJECTOR_SCOPE, useValue: "root" }, Console, { provide: DOCUMENT, useValue: { title: "" } }, provideZonelessChangeDetection(), provideLocationMocks(), provideRouter(routes)],
    Injector.create({ providers: [] }),
  );
  t.after(() => env.destroy());
  return env.get(Router);
}

function setup(t, issuer) {
  const p = fakeProvider(issuer);
  const page = fakePage("https://app.test/");
  const storage = fakeStorage();
  const m = new TokenManager({ tokenEndpoint: p.metadata.token_endpoint, clientId: "spa", fetch: p.fetch, events: null, crossTab: false });
  t.after(() => m.close());
  const env = { fetch: p.fetch, storage, location: page.location };
  const errors = [];
  const router = app(t, [
    { path: "orders", canActivate: [loginGuard(m, { ...env, issuer: p.issuer, clientId: "spa", redirectUri: "https://app.test/callback" })], children: [] },
    { path: "callback", canActivate: [loginCallback(m, { ...env, history: page.history, fallback: "/home", onError: (e) => (errors.push(e), "/failed") })], children: [] },
    { path: "home", children: [] },
    { path: "failed", children: [] },
  ]);
  return { p, page, storage, m, router, errors };
}

test("Angular: a guarded route without a login starts one; the callback route finishes it and returns to the route", async (t) => {
  const { p, page, storage, m, router } = setup(t, "https://ng1.test");
  assert.equal(await router.navigateByUrl("/orders?tab=2"), false, "the navigation waits for the login");
  assert.equal(page.assigned.length, 1);
  const authorize = new URL(page.assigned[0]);
  assert.equal(authorize.origin + authorize.pathname, "https://ng1.test/oauth/authorize");
  assert.equal(JSON.parse([...storage.map.values()][0]).returnTo, "/orders?tab=2");

  // The provider sends the browser back to the callback.
  const back = new URL(p.authorize(page.assigned[0]));
  page.location.href = back.href;
  assert.equal(await router.navigateByUrl(back.pathname + back.search), true);
  assert.equal(router.url, "/orders?tab=2");
  assert.equal(p.tokenCalls.length, 1);
  assert.equal(await m.getAccessToken(), "at1");
  assert.deepEqual(page.replaced.map((r) => r.url), ["https://app.test/callback"]);
  assert.equal(page.assigned.length, 1, "no second login");

  // A reload of the callback page after the login: no request, to the fallback, still logged in.
  assert.equal(await router.navigateByUrl("/callback"), true);
  assert.equal(router.url, "/home");
  assert.equal(p.tokenCalls.length, 1);
  assert.equal(await router.navigateByUrl("/orders"), true);
  assert.equal(page.assigned.length, 1);
});

test("Angular: a refused callback (state of no login) goes to onError's route without a request", async (t) => {
  const { p, page, m, router, errors } = setup(t, "https://ng2.test");
  page.location.href = `https://app.test/callback?code=c&state=forged&iss=${encodeURIComponent(p.issuer)}`;
  assert.equal(await router.navigateByUrl("/callback?code=c&state=forged"), true);
  assert.equal(router.url, "/failed");
  assert.equal(errors.length, 1);
  assert.equal(errors[0].error, "invalid_state");
  assert.equal(p.calls.length, 0);
  await assert.rejects(m.getAccessToken(), { name: "ReauthRequiredError" });
});
