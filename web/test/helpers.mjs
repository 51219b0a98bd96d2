// Fakes shared by the unit tests: a token endpoint and API behind an
// injected fetch, Web Locks, BroadcastChannel, Storage and WebSocket; an
// OpenID provider, a page's location and history for the login tests.
import { createHash } from "node:crypto";

export const TOKEN = "https://auth.test/oauth/token";
export const REVOKE = "https://auth.test/oauth/revoke";
export const API = "https://api.test/data";

/** Lets pending promise callbacks run (setImmediate is not mocked). */
export const flush = async (n = 3) => {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
};

export const json = (status, body, headers = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });

/** A deferred promise. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((a, b) => ((resolve = a), (reject = b)));
  return { promise, resolve, reject };
}

/**
 * A fake server behind fetch. The token endpoint issues at1/rt1, at2/rt2, …
 * (expires_in 3600) unless tokenReply is set; the API answers 200 for the
 * newest access token and 401 otherwise unless apiReply is set.
 */
export function fakeServer() {
  const s = {
    calls: [],
    issued: 0,
    tokenReply: null, // (call) => Response | Promise<Response>
    apiReply: null,
    get tokenCalls() {
      return s.calls.filter((c) => c.url === TOKEN);
    },
    get apiCalls() {
      return s.calls.filter((c) => c.url.startsWith("https://api.test"));
    },
    issue() {
      s.issued++;
      return json(200, { access_token: "at" + s.issued, refresh_token: "rt" + s.issued, expires_in: 3600, token_type: "Bearer" });
    },
    fetch: async (input, init = {}) => {
      const req = new Request(input, init.body instanceof ReadableStream ? { ...init, body: null } : init);
      const call = {
        url: req.url.split("?")[0],
        method: req.method,
        auth: req.headers.get("Authorization"),
        headers: req.headers,
        credentials: init.credentials,
        body: init.body instanceof ReadableStream ? init.body : await req.text(),
      };
      s.calls.push(call);
      // Like fetch, give up when the request's signal aborts (the manager's timeout).
      const signal = init.signal;
      if (call.url === TOKEN) {
        const answer = Promise.resolve(s.tokenReply ? s.tokenReply(call) : s.issue());
        if (!signal) return answer;
        return Promise.race([answer, new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))]);
      }
      if (call.url === REVOKE) return new Response(null, { status: 200 });
      if (s.apiReply) return s.apiReply(call);
      return s.issued > 0 && call.auth === "Bearer at" + s.issued ? json(200, { ok: true }) : json(401, { error: "invalid_token" }, { "WWW-Authenticate": 'Bearer error="invalid_token"' });
    },
  };
  return s;
}

/**
 * A Web Locks fake: exclusive locks queue FIFO per name; shared ones are
 * granted at once (no exclusive request ever asks for their names); query()
 * lists every holder.
 */
export function fakeLocks() {
  const tails = new Map();
  const held = []; // names, one entry per holder
  const hold = async (name, cb) => {
    held.push(name);
    try {
      return await cb({ name });
    } finally {
      held.splice(held.indexOf(name), 1);
    }
  };
  return {
    requests: 0,
    request(name, opts, cb) {
      if (typeof opts === "function") cb = opts;
      else if (opts?.mode === "shared") return hold(name, cb);
      this.requests++;
      const p = (tails.get(name) ?? Promise.resolve()).then(() => hold(name, cb));
      tails.set(name, p.catch(() => {}));
      return p;
    },
    async query() {
      return { held: held.map((name) => ({ name })) };
    },
  };
}

/**
 * A BroadcastChannel fake: channels made by one hub talk to each other (not to themselves), asynchronously.
 * While make.hold is true, messages wait in make.held until make.release() delivers them (a slow renderer).
 * A channel whose frozen property is true misses every message sent meanwhile (a frozen or discarded tab).
 */
export function channelHub() {
  const members = new Set();
  const posted = [];
  const held = [];
  const make = (name) => {
    const ch = {
      name,
      onmessage: null,
      postMessage(m) {
        const data = structuredClone(m);
        posted.push({ name, data });
        for (const o of members) {
          if (o === ch || o.name !== name || o.frozen) continue; // a frozen tab never gets it
          const deliver = () => o.onmessage?.({ data });
          if (make.hold) held.push(deliver);
          else queueMicrotask(deliver);
        }
      },
      close() {
        members.delete(ch);
      },
    };
    members.add(ch);
    return ch;
  };
  make.posted = posted;
  make.hold = false;
  make.held = held;
  make.release = () => {
    make.hold = false;
    for (const d of held.splice(0)) d();
  };
  return make;
}

/** A Storage fake. */
export function fakeStorage() {
  const m = new Map();
  return {
    map: m,
    getItem: (k) => (m.has(k) ? m.get(k) : null),
    setItem: (k, v) => void m.set(k, String(v)),
    removeItem: (k) => void m.delete(k),
  };
}

/** A WebSocket fake: the test plays the server with open(), message(), serverClose(). */
export function fakeWebSocket() {
  const sockets = [];
  class WS {
    constructor(url, protocols) {
      this.url = String(url);
      this.protocols = protocols;
      this.readyState = 0;
      this.sent = [];
      this.closedWith = null;
      this.onopen = this.onmessage = this.onclose = this.onerror = null;
      sockets.push(this);
    }
    send(d) {
      if (this.readyState !== 1) throw new Error("fake ws: send while not open");
      this.sent.push(d);
    }
    close(code = 1000, reason = "") {
      if (this.readyState >= 2) return;
      this.readyState = 3;
      this.closedWith = { code, reason };
      queueMicrotask(() => this.onclose?.({ code, reason }));
    }
    open() {
      this.readyState = 1;
      this.onopen?.({ type: "open" });
    }
    message(data) {
      this.onmessage?.({ data });
    }
    serverClose(code, reason = "") {
      this.readyState = 3;
      this.onclose?.({ code, reason });
    }
  }
  return { WS, sockets };
}

/** An unsigned JWT with the given claims (the manager never verifies). */
export function jwt(claims) {
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.sig`;
}

/**
 * A fake OpenID provider behind fetch, for the login tests: discovery,
 * an authorize() the test calls in place of the browser's visit (it
 * answers with the redirect URL, code bound to the request), and a token
 * endpoint that checks the code (single use, client, redirect URI, PKCE
 * S256) and answers with tokens and an ID token carrying the request's
 * nonce. md changes the metadata; idClaims(claims) the ID token's claims.
 */
export function fakeProvider(issuer, { md = {}, idClaims = (c) => c } = {}) {
  const p = {
    issuer,
    metadata: {
      issuer,
      authorization_endpoint: issuer + "/oauth/authorize",
      token_endpoint: issuer + "/oauth/token",
      end_session_endpoint: issuer + "/oauth/logout",
      authorization_response_iss_parameter_supported: true,
      code_challenge_methods_supported: ["S256"],
      ...md,
    },
    calls: [],
    codes: new Map(),
    issued: 0,
    tokenReply: null, // (call) => Response
    get tokenCalls() {
      return p.calls.filter((c) => c.url === p.metadata.token_endpoint);
    },
    get discoveryCalls() {
      return p.calls.filter((c) => c.url.includes("/.well-known/"));
    },
    /** The redirect a successful login ends with. */
    authorize(url) {
      const q = new URL(url).searchParams;
      const code = "code" + p.codes.size;
      p.codes.set(code, Object.fromEntries(q));
      const back = new URL(q.get("redirect_uri"));
      back.searchParams.set("code", code);
      back.searchParams.set("state", q.get("state"));
      back.searchParams.set("iss", issuer);
      return back.href;
    },
    fetch: async (input, init = {}) => {
      const req = new Request(input, init);
      const call = { url: req.url, method: req.method, headers: req.headers, credentials: init.credentials, body: await req.text() };
      p.calls.push(call);
      if (req.url === issuer.replace(/\/$/, "") + "/.well-known/openid-configuration") return json(200, p.metadata);
      if (req.url !== p.metadata.token_endpoint) return json(404, {});
      if (p.tokenReply) return p.tokenReply(call);
      const f = new URLSearchParams(call.body);
      const a = p.codes.get(f.get("code"));
      p.codes.delete(f.get("code"));
      const s256 = createHash("sha256").update(f.get("code_verifier") ?? "").digest("base64url");
      if (!a || f.get("grant_type") !== "authorization_code" || a.client_id !== f.get("client_id") || a.redirect_uri !== f.get("redirect_uri") || a.code_challenge !== s256) {
        return json(400, { error: "invalid_grant", error_description: "bad code" });
      }
      p.issued++;
      const claims = idClaims({ iss: issuer, aud: a.client_id, sub: "alice", nonce: a.nonce, exp: 1, iat: 0, auth_time: 0 });
      return json(200, { access_token: "at" + p.issued, refresh_token: "rt" + p.issued, expires_in: 3600, token_type: "Bearer", id_token: jwt(claims) });
    },
  };
  return p;
}

/** A page's location and history: assign() records, replaceState() changes href. */
export function fakePage(href) {
  const page = {
    assigned: [],
    replaced: [],
    location: {
      href,
      assign: (url) => void page.assigned.push(url),
    },
    history: {
      state: { router: 1 },
      replaceState(data, _unused, url) {
        page.replaced.push({ data, url });
        page.location.href = new URL(url, page.location.href).href;
      },
    },
  };
  return page;
}
