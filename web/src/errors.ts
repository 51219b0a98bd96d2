// The errors TokenManager gives: the one error of the OAuth endpoints it
// calls (token and revocation) with the reading of their Retry-After, and
// the two that end a family or refuse to start one.

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
  declare readonly status?: number;
  /**
   * The OAuth error code of the answer's JSON body, e.g. "invalid_grant" (the
   * family ended), "invalid_client" (the client is unknown or not allowed for
   * this origin), "temporarily_unavailable"; undefined when the answer had none.
   */
  declare readonly error?: string;
  /** The answer's error_description, for people; undefined when it had none. */
  declare readonly error_description?: string;
  /**
   * The answer's Retry-After (RFC 9110 §10.2.3; seconds or an HTTP-date) as
   * milliseconds from when the answer arrived, 0 for a date already past;
   * undefined when the header is absent or malformed.
   */
  declare readonly retryAfterMs?: number;
  constructor(message: string, init: OAuthErrorInit = {}) {
    // Error takes the cause (an own property only when given); the rest are fields.
    super(message, init);
    this.name = "OAuthError";
    Object.assign(this, init);
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
  if (/^\d+$/.test(v)) return +v * 1000;
  // Every HTTP-date begins with a day name; asctime has no zone, and is GMT.
  const t = /^[A-Z][a-z]{2}/.test(v) ? Date.parse(/GMT$/.test(v) ? v : v + " GMT") : NaN;
  return isNaN(t) ? undefined : Math.max(0, t - now);
}

/** The OAuthError of an endpoint's answer that is not a success, body its parsed JSON (anything). */
export function answerError(endpoint: string, res: Response, body: unknown, now: number): OAuthError {
  const b = body as { error?: unknown; error_description?: unknown } | null | undefined;
  const str = (v: unknown) => (typeof v === "string" ? v : undefined);
  const error = str(b?.error);
  return new OAuthError(`tokend: ${endpoint} endpoint answered HTTP ${res.status}${error ? " " + error : ""}`, {
    status: res.status,
    error,
    error_description: str(b?.error_description),
    retryAfterMs: retryAfterMs(res.headers.get("Retry-After"), now),
  });
}

/**
 * The family is over (terminal refresh failure, logout, no refresh token): the user must sign in again.
 * After an endpoint's terminal answer (e.g. 400 invalid_grant, 401 invalid_client), cause is its OAuthError.
 */
export class ReauthRequiredError extends Error {
  constructor(message = "tokend: reauthentication required", options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ReauthRequiredError";
  }
}

/**
 * start() was given tokens without a refresh_token outside cookie mode:
 * the manager could never refresh them, and the user would be sent to
 * log in again once the access token expires. Thrown by start() before it
 * changes anything. With tokend, a backend's mint for a public client
 * always carries one; a response without one is a mint for the backend
 * itself, or one that lost it on the way to the page.
 */
export class MissingRefreshTokenError extends Error {
  constructor(message = "tokend: start() got tokens without a refresh_token") {
    super(message);
    this.name = "MissingRefreshTokenError";
  }
}
