// When a token is refreshed and how long a failed refresh waits: the
// browser's column of docs/client-policy.md, as pure functions of times in
// epoch milliseconds on this device's clock. The server's clock is never
// read: a JWT's iat and exp are not compared with Date.now(), so a device
// clock that is off by any amount, either way, changes nothing.
import { OAuthError } from "./errors.js";
import { jwtClaims } from "./jwt.js";
import type { TokenResponse } from "./options.js";

/**
 * A token as tabs pass it to each other and storage keeps it (JSON turns an
 * unknown expiry into null); times in epoch ms on this device's clock.
 */
export interface Token {
  access_token: string;
  /** Absent in cookie mode (the cookie holds it). */
  refresh_token?: string;
  /** When the request that brought the token was sent: the start of its lifetime here. */
  issued_at: number;
  /** issued_at + expires_in; Infinity when the lifetime is unknown (then only a 401 refreshes). */
  expires_at: number;
  /**
   * Its predecessor's seq + 1 (0 for the first this tab got), the same in
   * every tab that adopted it: tabs order tokens by it, whatever their clocks.
   */
  seq: number;
}

/** A token this tab holds, and when its background refresh starts. */
export interface Held extends Token {
  refresh_at: number;
}

/** Backoff after a failed refresh: full jitter, ceiling BACKOFF_BASE_MS·2^(n-1) up to a cap. */
export const BACKOFF_BASE_MS = 1_000;
/** The backoff cap after failures the authorization server answered (its 5xx, 429, …). */
export const BACKOFF_CAP_MS = 30_000;
/**
 * The backoff cap after failures it did not answer (network error, CORS
 * refusal, a gateway's 502/503/504 without an OAuth error or Retry-After):
 * such attempts cost the server nothing, and a short cap notices its return.
 */
export const UNANSWERED_CAP_MS = 5_000;

/**
 * The token in t, the token endpoint's answer to a request sent at `sent`,
 * replacing prev: it lives from sent to sent + expires_in (RFC 6749 §5.1),
 * else to sent + the JWT's exp − iat (both on the server's clock), else for
 * an unknown time (Infinity). Without a refresh_token (RFC 6749 §6 lets a
 * server keep the old one), prev's.
 */
export function received(t: TokenResponse, sent: number, prev: Token | null): Token {
  const c = jwtClaims(t.access_token);
  // Subtraction converts to numbers: NaN unless both are numeric.
  const life = typeof t.expires_in === "number" ? t.expires_in : (c?.exp as number) - (c?.iat as number);
  return {
    access_token: t.access_token,
    refresh_token: t.refresh_token ?? prev?.refresh_token,
    issued_at: sent,
    expires_at: life >= 0 ? sent + life * 1000 : Infinity,
    seq: (prev?.seq ?? -1) + 1,
  };
}

/**
 * When to refresh a token that lives from issued_at to expires_at: lead =
 * max(20 % of the lifetime, min(leadMs, half the lifetime)) before expiry,
 * less a jitter of up to 10 % of the lead; Infinity for an unknown expiry.
 * A Token's issued_at is never after its expires_at.
 */
export function refreshTime(issued_at: number, expires_at: number, leadMs: number, random: () => number): number {
  const life = expires_at - issued_at;
  const lead = Math.max(life * 0.2, Math.min(leadMs, life / 2));
  return isFinite(expires_at) ? expires_at - lead - random() * lead * 0.1 : Infinity;
}

/**
 * Whether h may still be presented at now: before expiry less min(10 s, a
 * tenth of the lifetime). A dropped token (expires_at 0: a negative
 * lifetime) is not, since now is after issued_at.
 */
export function usable(h: Held, now: number): boolean {
  return now < h.expires_at - Math.min(10_000, (h.expires_at - h.issued_at) / 10);
}

/**
 * The wait before the next attempt after the n-th failure in a row (n ≥ 1)
 * with error e, and its floor: the Retry-After of a 429 (RFC 6585 §4) or
 * 503 (RFC 9110 §10.2.3), capped at BACKOFF_CAP_MS. Returns [floor, wait],
 * wait ≥ floor.
 */
export function retryWait(n: number, e: unknown, random: () => number): [number, number] {
  const o = e instanceof OAuthError ? e : undefined;
  const s = o?.status ?? 0;
  const unanswered = !s || (s > 501 && s < 505 && !o!.error && o!.retryAfterMs === undefined);
  const ceiling = Math.min(unanswered ? UNANSWERED_CAP_MS : BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (n - 1));
  const floor = s === 429 || s === 503 ? Math.min(BACKOFF_CAP_MS, o!.retryAfterMs ?? 0) : 0;
  return [floor, Math.max(floor, random() * ceiling)];
}
