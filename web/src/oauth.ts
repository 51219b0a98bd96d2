// The one error of the OAuth endpoints the manager calls (token and
// revocation), and the reading of their Retry-After.

/** The fields of an OAuthError besides its message. */
export interface OAuthErrorInit {
  status?: number;
  error?: string;
  error_description?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

/**
 * The token or revocation endpoint answered with an error (RFC 6749 §5.2,
 * RFC 7009 §2.2.1), or could not be reached. Thrown (or given as the cause
 * of a ReauthRequiredError) by every call that reaches an endpoint:
 * refresh, getAccessToken, fetch and logout.
 */
export class OAuthError extends Error {
  /** The HTTP status; undefined when the endpoint was not reached (network error, CORS refusal; see cause). */
  readonly status?: number;
  /**
   * The OAuth error code of the answer's JSON body, e.g. "invalid_grant" (the
   * login ended), "invalid_client" (the client is unknown or not allowed for
   * this origin), "temporarily_unavailable"; undefined when the answer had none.
   */
  readonly error?: string;
  /** The answer's error_description, for people; undefined when it had none. */
  readonly error_description?: string;
  /**
   * The answer's Retry-After (RFC 9110 §10.2.3; seconds or an HTTP-date) as
   * milliseconds from when the answer arrived, 0 for a date already past;
   * undefined when the header is absent or malformed.
   */
  readonly retryAfterMs?: number;
  constructor(message: string, init: OAuthErrorInit = {}) {
    super(message, { cause: init.cause });
    this.name = "OAuthError";
    this.status = init.status;
    this.error = init.error;
    this.error_description = init.error_description;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/**
 * @deprecated OAuthError's former name, kept as an alias: `instanceof
 * TokenRefreshError` and `.status` work as before.
 */
export const TokenRefreshError = OAuthError;
/** @deprecated OAuthError's former name. */
export type TokenRefreshError = OAuthError;

/**
 * A Retry-After header value (RFC 9110 §10.2.3) as a wait in ms from now
 * (epoch ms): delay-seconds (digits only), or an HTTP-date (IMF-fixdate,
 * RFC 850 or asctime, all in GMT) less now, at least 0. Undefined for null
 * and for anything else (negative or fractional numbers, other dates, garbage).
 */
export function retryAfterMs(value: string | null, now: number): number | undefined {
  const v = value?.trim() ?? "";
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  // Every HTTP-date begins with a day name; asctime has no zone, and is GMT.
  const t = /^[A-Z][a-z]{2}/.test(v) ? Date.parse(/GMT$/.test(v) ? v : v + " GMT") : NaN;
  return isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The OAuthError of an endpoint's answer that is not a success, body its parsed JSON (anything). */
export function answerError(endpoint: string, res: Response, body: unknown, now: number): OAuthError {
  const b = (body ?? {}) as { error?: unknown; error_description?: unknown };
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const error = str(b.error);
  return new OAuthError(`tokend: ${endpoint} endpoint answered HTTP ${res.status}${error ? " " + error : ""}`, {
    status: res.status,
    error,
    error_description: str(b.error_description),
    retryAfterMs: retryAfterMs(res.headers.get("Retry-After"), now),
  });
}
