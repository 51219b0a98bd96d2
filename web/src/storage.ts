// How a token travels between tabs and is kept: the reading of a Token from
// another tab's message or from storage, and the Storage access of the
// "session" and "local" modes.
import type { Held, Token } from "./schedule.js";
import type { StorageLike, TokenManagerOptions } from "./options.js";

/**
 * The token in d (another tab's message, or what storage held), or
 * undefined if d holds none. Without issued_at (a tab of an older
 * version), the lifetime is counted from now: shorter than the truth,
 * never longer.
 */
export function fromWire(d: unknown, now: number): Token | undefined {
  const w = d as { [k in keyof Token]?: unknown } | null;
  if (typeof w?.access_token !== "string") return undefined;
  const expires_at = typeof w.expires_at === "number" ? w.expires_at : Infinity;
  const t: Token = {
    access_token: w.access_token,
    issued_at: typeof w.issued_at === "number" && w.issued_at <= expires_at ? w.issued_at : Math.min(now, expires_at),
    expires_at,
    seq: typeof w.seq === "number" ? w.seq : 0,
  };
  if (typeof w.refresh_token === "string") t.refresh_token = w.refresh_token;
  return t;
}

/** Where o keeps tokens: null in "memory" mode, or when storage is refused (privacy mode). */
function area(o: TokenManagerOptions): StorageLike | null {
  if (!o.storage || o.storage === "memory") return null;
  try {
    // localStorage or sessionStorage
    return o.storageArea ?? (globalThis as unknown as Record<string, StorageLike | undefined>)[o.storage + "Storage"] ?? null;
  } catch {
    return null;
  }
}

const key = (o: TokenManagerOptions) => o.storageKey ?? "tokend:" + o.clientId;

/** Keeps h (or, for null, forgets the entry); a full or refused storage leaves the tokens in memory only. */
export function save(o: TokenManagerOptions, h: Held | null): void {
  try {
    if (h) area(o)?.setItem(key(o), JSON.stringify(h));
    else area(o)?.removeItem(key(o));
  } catch {
    // quota or privacy mode: memory still holds the tokens
  }
}

/** What storage holds, unparsed (undefined when nothing or unreadable). */
export function load(o: TokenManagerOptions): unknown {
  try {
    return JSON.parse(area(o)?.getItem(key(o)) ?? "null") ?? undefined;
  } catch {
    return undefined;
  }
}
