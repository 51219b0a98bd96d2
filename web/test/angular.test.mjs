// The Angular interceptor with the real HttpClient (JIT, zoneless) against a
// real local HTTP server.
import "@angular/compiler";
import { test } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { Injector, createEnvironmentInjector, provideZonelessChangeDetection, ɵINJECTOR_SCOPE as INJECTOR_SCOPE } from "@angular/core";
import { HttpClient, provideHttpClient, withFetch, withInterceptors } from "@angular/common/http";
import { firstValueFrom } from "rxjs";
import { TokenManager } from "../dist/index.js";
import { tokendInterceptor } from "../dist/angular.js";

async function startServer(t) {
  const seen = { token: [], api: [], refuseAll: false, holdUntil: 0 };
  const held = [];
  let issued = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (req.url.startsWith("/oauth/token")) {
        seen.token.push({ auth: req.headers.authorization, body });
        issued++;
        const n = issued;
        const answer = () => {
          res.writeHead(200, { "Content-Type": "application/json" });
          res.end(JSON.stringify({ access_token: "at" + n, refresh_token: "rt" + n, expires_in: 3600 }));
        };
        // The token endpoint answers only once the API has seen holdUntil
        // requests: the refresh is surely in flight while the 401s arrive.
        if (seen.api.length >= seen.holdUntil) answer();
        else held.push(answer);
        return;
      }
      seen.api.push(req.headers.authorization);
      if (seen.api.length >= seen.holdUntil) held.splice(0).forEach((f) => f());
      if (!seen.refuseAll && req.headers.authorization === "Bearer at" + issued && issued > 0) {
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify({ path: req.url }));
      } else {
        res.writeHead(401, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
        res.end();
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => new Promise((r) => server.close(r)));
  return { base: `http://127.0.0.1:${server.address().port}`, seen };
}

function angular(t, manager) {
  const root = Injector.create({ providers: [] });
  const env = createEnvironmentInjector(
    // A root-scoped environment injector, as an application's: services
    // providedIn "root" (PendingTasks, used by HttpClient) live in it.
    [{ provide: INJECTOR_SCOPE, useValue: "root" }, provideZonelessChangeDetection(), provideHttpClient(withFetch(), withInterceptors([tokendInterceptor(manager)]))],
    root,
  );
  t.after(() => env.destroy());
  return env.get(HttpClient);
}

test("Angular: 20 concurrent requests that get 401 → 1 refresh, 20 replays, all succeed", async (t) => {
  const { base, seen } = await startServer(t);
  const m = new TokenManager({ tokenEndpoint: base + "/oauth/token", clientId: "spa", events: null, crossTab: false, apiOrigins: [base] });
  t.after(() => m.close());
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  const http = angular(t, m);
  seen.holdUntil = 20;
  const res = await Promise.all(Array.from({ length: 20 }, (_, i) => firstValueFrom(http.get(`${base}/api/${i}`))));
  assert.deepEqual(res.map((r) => r.path), Array.from({ length: 20 }, (_, i) => `/api/${i}`));
  assert.equal(seen.token.length, 1);
  assert.equal(seen.token[0].body, "grant_type=refresh_token&refresh_token=rt0&client_id=spa");
  assert.equal(seen.api.length, 40);
  assert.equal(seen.api.filter((a) => a === "Bearer at0").length, 20);
  assert.equal(seen.api.filter((a) => a === "Bearer at1").length, 20);
});

test("Angular: the error of the replay propagates (no loop); the token endpoint is not intercepted", async (t) => {
  const { base, seen } = await startServer(t);
  const m = new TokenManager({ tokenEndpoint: base + "/oauth/token", clientId: "spa", events: null, crossTab: false, apiOrigins: [base] });
  t.after(() => m.close());
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  const http = angular(t, m);
  // The token endpoint through HttpClient: no bearer added, no refresh on its answer.
  const body = "grant_type=refresh_token&refresh_token=x&client_id=spa";
  const tok = await firstValueFrom(http.post(base + "/oauth/token", body, { headers: { "Content-Type": "application/x-www-form-urlencoded" } }));
  assert.equal(tok.access_token, "at1");
  assert.deepEqual(seen.token, [{ auth: undefined, body }]);
  assert.equal(seen.api.length, 0);
  // The API now refuses every token: one refresh, one replay, the replay's 401 propagates.
  seen.refuseAll = true;
  const err = await firstValueFrom(http.get(base + "/api/x")).then(
    () => null,
    (e) => e,
  );
  assert.equal(err?.status, 401);
  assert.equal(seen.token.length, 2, "one refresh by the interceptor");
  assert.deepEqual(seen.api, ["Bearer at0", "Bearer at2"]);
});
