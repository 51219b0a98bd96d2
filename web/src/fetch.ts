// The fetch wrapper: which requests get the bearer token, and the one
// refresh-and-replay of a request the API refused for its token.
import type { TokenManagerOptions } from "./options.js";

/** Is this response a challenge worth a refresh (401, or 403 when enabled), not insufficient_scope (RFC 6750 §3.1)? */
export function isTokenChallenge(status: number, wwwAuthenticate: string | null, refreshOn403: boolean): boolean {
  if (wwwAuthenticate && /error\s*=\s*"?insufficient_scope/i.test(wwwAuthenticate)) return false;
  return status === 401 || (status === 403 && refreshOn403);
}

/** url's origin and path, resolved against the page (or base, outside a page): how endpoints are compared. */
function endpointKey(url: string, base: string): string {
  try {
    const p = new URL(url, (globalThis as { location?: { href: string } }).location?.href ?? base);
    return p.origin + p.pathname;
  } catch {
    return url;
  }
}

/**
 * The routing rules of o, whose revocation endpoint is revoke: [isEndpoint,
 * sendsTokenTo]. A URL is an endpoint if its origin and path are the token
 * or revocation endpoint's; it gets the token if its origin is the page's or
 * one of o.apiOrigins, and it is not an endpoint.
 */
export function routes(o: TokenManagerOptions, revoke: string): [(url: string) => boolean, (url: string) => boolean] {
  const base = o.tokenEndpoint;
  const endpoints = new Set([endpointKey(base, base), endpointKey(revoke, base)]);
  const origins = new Set<string>();
  for (const a of o.apiOrigins ?? []) {
    try {
      origins.add(new URL(a).origin);
    } catch {
      // not a URL: no request goes there with the token
    }
  }
  const isEndpoint = (url: string) => endpoints.has(endpointKey(url, base));
  const sendsTokenTo = (url: string) => {
    if (isEndpoint(url)) return false;
    const page = (globalThis as { location?: { href: string; origin: string } }).location;
    try {
      const origin = new URL(url, page?.href).origin;
      return origin === page?.origin || origins.has(origin);
    } catch {
      return false;
    }
  };
  return [isEndpoint, sendsTokenTo];
}

/** What the fetch wrapper uses of a TokenManager. */
interface Bearer {
  sendsTokenTo(url: string): boolean;
  getAccessToken(): Promise<string>;
  isChallenge(status: number, wwwAuthenticate: string | null): boolean;
  refresh(rejected?: string): Promise<string>;
}

/**
 * m.fetch: send (the app's fetch) with m's bearer token; on a challenge,
 * one refresh and one replay. A request whose body is a stream cannot be
 * replayed: its challenge goes back to the app, and drop(token) makes the
 * next call refresh.
 */
export async function bearerFetch(m: Bearer, send: typeof fetch, drop: (token: string) => void, input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const req = input instanceof Request ? input : undefined;
  if (!m.sendsTokenTo(req?.url ?? String(input))) return send(input, init);
  const token = await m.getAccessToken();
  const replayable = !(typeof ReadableStream === "function" && init?.body instanceof ReadableStream);
  const attempt = (tok: string, first: boolean) => {
    const headers = new Headers(init?.headers ?? req?.headers);
    headers.set("Authorization", "Bearer " + tok);
    // A Request is sent as a clone the first time, so that its body is left for the replay.
    return send(first && req ? req.clone() : input, { ...init, headers });
  };
  const res = await attempt(token, true);
  if (!m.isChallenge(res.status, res.headers.get("WWW-Authenticate"))) return res;
  if (!replayable) {
    drop(token);
    return res;
  }
  let fresh: string;
  try {
    fresh = await m.refresh(token);
  } catch {
    return res;
  }
  void res.body?.cancel().catch(() => {});
  return attempt(fresh, false);
}
