// An app as web/README.md's "Log in" writes it, on the app origins of the
// login tests (login*.test.mjs). The app page (login-app.html?auth=&client=&storage=&cookie=1)
// keeps its settings in sessionStorage and calls login(); the callback page
// (login-callback.html, the client's redirect URI) calls handleRedirect(),
// which starts the TokenManager. On every load of either page the manager
// is built the same way, so a reload finds its tokens per its storage mode.
// window.app.result says what the app saw, for the tests; nothing here
// answers for the library.
import { TokenManager } from "/lib/index.js";
import { handleRedirect, login, logout } from "/lib/login.js";

const SETTINGS = "e2e:login-app";
const q = new URLSearchParams(location.search);
if (q.has("auth")) {
  sessionStorage.setItem(SETTINGS, JSON.stringify({ auth: q.get("auth"), client: q.get("client"), storage: q.get("storage") || "memory", cookie: q.get("cookie") === "1" }));
}
const cfg = JSON.parse(sessionStorage.getItem(SETTINGS) ?? "null");
const result = { loaded: false, reauth: 0, redirect: null, error: null, href: "" };
const redirectUri = location.origin + "/login-callback.html";

const tokens = cfg && new TokenManager({
  tokenEndpoint: cfg.auth + "/oauth/token",
  clientId: cfg.client,
  storage: cfg.storage,
  cookie: cfg.cookie,
  onReauthRequired: () => { result.reauth++; },
});

/** An error as the tests compare it. */
const described = (e) => ({ name: e?.name, error: e?.error, description: e?.error_description, message: String(e?.message ?? e) });

window.app = {
  result,
  /** login() with the app's settings and extra options (prompt…); resolves only if it did not navigate. */
  async login(opts = {}) {
    try {
      await login({ issuer: cfg.auth, clientId: cfg.client, redirectUri, ...opts });
    } catch (e) {
      result.error = described(e);
    }
  },
  /** logout() with the ID token this tab's login got. */
  async logout(opts = {}) {
    await logout({ issuer: cfg.auth, clientId: cfg.client, idTokenHint: sessionStorage.getItem("e2e:id-token") ?? undefined, manager: tokens, ...opts });
  },
  /** GET /api/echo through the manager: its status and the subject the API saw. */
  async call() {
    try {
      const res = await tokens.fetch("/api/echo");
      return { status: res.status, subject: res.status === 200 ? (await res.json()).subject : "" };
    } catch (e) {
      return { status: 0, error: described(e) };
    }
  },
  /** manager.refresh(): the new token, or the error. */
  async refresh() {
    try {
      return { token: await tokens.refresh() };
    } catch (e) {
      return { error: described(e) };
    }
  },
};

if (cfg) {
  try {
    const done = await handleRedirect({ manager: tokens, cookie: cfg.cookie });
    if (done) {
      sessionStorage.setItem("e2e:id-token", done.idToken ?? "");
      result.redirect = { sub: done.claims?.sub, sid: done.claims?.sid, returnTo: done.returnTo, idToken: !!done.idToken, refreshToken: !!done.tokens.refresh_token };
    } else {
      tokens.start(); // a reload: the tokens the storage mode kept, if any (cookie mode: the cookie at the first call)
    }
  } catch (e) {
    result.error = described(e);
  }
}
result.href = location.href;
result.loaded = true;
