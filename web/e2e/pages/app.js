// Test page helpers, driven by the e2e tests through page.evaluate. They
// only wire the real @tokend/web build (/lib/index.js) to counters the
// tests read; they never answer for the library.
const state = {
  reauth: 0,            // onReauthRequired calls
  tokenRequests: 0,     // requests the manager sent to the auth origin
  tokenInFlight: 0,     // of which not yet answered
  importError: "",
  socketEvents: [],     // what tokenSocket reported to the app
  received: [],         // application messages the socket delivered
};
let lib = null;
try {
  lib = await import("/lib/index.js");
} catch (e) {
  state.importError = String(e);
}

function trackingFetch(auth) {
  return async (input, init) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const toAuth = url.startsWith(auth);
    if (toAuth) {
      state.tokenRequests++;
      state.tokenInFlight++;
    }
    try {
      return await globalThis.fetch(input, init);
    } finally {
      if (toAuth) state.tokenInFlight--;
    }
  };
}

window.h = {
  state,
  get lib() { return lib; },
  manager: null,

  /** Starts a TokenManager for clientId at the auth origin with the given tokens. */
  start({ auth, clientId, tokens, cookie = false, storage, crossTab, refreshLeadMs }) {
    const opts = {
      tokenEndpoint: auth + "/oauth/token",
      clientId,
      cookie,
      onReauthRequired: () => { state.reauth++; },
      fetch: trackingFetch(auth),
    };
    if (storage) opts.storage = storage;
    if (crossTab !== undefined) opts.crossTab = crossTab;
    if (refreshLeadMs !== undefined) opts.refreshLeadMs = refreshLeadMs;
    const m = new lib.TokenManager(opts);
    m.start(tokens);
    this.manager = m;
    return true;
  },

  /** n concurrent manager.fetch calls of /api/echo: their statuses and bodies. */
  async burst(n) {
    return Promise.all(Array.from({ length: n }, async () => {
      try {
        const res = await this.manager.fetch("/api/echo");
        return { status: res.status, body: res.status === 200 ? await res.json() : await res.text() };
      } catch (e) {
        return { status: 0, error: e.name + ": " + e.message, reauth: e instanceof lib.ReauthRequiredError };
      }
    }));
  },

  /** Opens a tokenSocket to url with the current manager; records what the app sees. */
  socket(url) {
    const s = lib.tokenSocket(url, this.manager);
    const on = (type, fn) => {
      if (typeof s.addEventListener === "function") s.addEventListener(type, fn);
      else s["on" + type] = fn;
    };
    on("message", (ev) => state.received.push(typeof ev === "string" ? ev : ev.data));
    on("open", () => state.socketEvents.push("open"));
    on("close", (ev) => state.socketEvents.push("close:" + (ev && ev.code)));
    this.ws = s;
    return true;
  },

  /** Sends n messages prefix000… through the socket, one every gapMs (real time). */
  async sendPaced(prefix, n, gapMs) {
    for (let i = 0; i < n; i++) {
      this.ws.send(prefix + String(i).padStart(3, "0"));
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
    }
    return true;
  },

  /** Times n sequential GET /api/echo with manager.fetch ("manager") or a plain fetch with the header ("plain"), in ms. */
  async timeCalls(kind, n, token) {
    const out = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const res = kind === "manager"
        ? await this.manager.fetch("/api/echo")
        : await fetch("/api/echo", { headers: { authorization: "Bearer " + token } });
      await res.arrayBuffer();
      out.push({ ms: performance.now() - t0, status: res.status });
    }
    return out;
  },

  /** One plain fetch of /api/echo with the bearer set by hand. */
  async plain(token) {
    const res = await fetch("/api/echo", { headers: { authorization: "Bearer " + token } });
    return { status: res.status, body: await res.text() };
  },
};
window.hReady = true;

// socket-stall.test.mjs: a tokenSocket whose app records what onundelivered
// reports, over a WebSocket class that counts the tokend.pong messages the
// library receives (it hides them from onmessage).
window.h.watchedSocket = function (url) {
  Object.assign(state, { undelivered: [], pongs: 0 });
  class Watched extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", (ev) => { if (String(ev.data).includes('"tokend.pong"')) state.pongs++; });
    }
  }
  const s = lib.tokenSocket(url, this.manager, { WebSocket: Watched });
  s.onmessage = (ev) => state.received.push(ev.data);
  s.onopen = () => state.socketEvents.push("open");
  s.onclose = (ev) => state.socketEvents.push("close:" + ev.code);
  s.onundelivered = (data) => state.undelivered.push(...data);
  this.ws = s;
  return true;
};
// Sleeping tabs, wrong clocks and outages (sleep, skew and outage tests).
Object.assign(window.h, {
  /** manager.refresh(rejected): the token it resolved with, or the error it rejected with. */
  async refresh(rejected) {
    try {
      return { token: await this.manager.refresh(rejected) };
    } catch (e) {
      return { error: e.name + ": " + e.message, reauth: e instanceof lib.ReauthRequiredError };
    }
  },
  /** manager.getAccessToken(): the token, or the error. */
  async token() {
    try {
      return { token: await this.manager.getAccessToken() };
    } catch (e) {
      return { error: e.name + ": " + e.message, reauth: e instanceof lib.ReauthRequiredError };
    }
  },
});
