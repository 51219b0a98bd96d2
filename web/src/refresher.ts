// One refresh at a time, and when the next one starts: at the token's
// refresh time, or when a failure's backoff ends (schedule.ts), never both.
import { ReauthRequiredError } from "./errors.js";
import { retryWait } from "./schedule.js";

const MAX_TIMER = 2 ** 31 - 1;

/** Runs an attempt single-flight: now, at a set time, or after a failure's backoff. */
export interface Refresher {
  /** The refresh in flight, or a new one; during a backoff, the failure's error (no request outside the backoff schedule). */
  run(): Promise<string>;
  /** Starts a refresh unless one is in flight or a backoff runs. */
  kick(): void;
  /** Starts a refresh at epoch ms `at` (never for Infinity; a time past is now), replacing the one scheduled; nothing during a backoff. */
  at(at: number): void;
  /** New tokens came (refresh, another tab, a new family): the failures are over, no retry or wait is left, nothing is scheduled. */
  reset(): void;
  /**
   * The page is back (event type: visibilitychange, pageshow, resume,
   * online): the refresh due at `at` starts now if that time has passed,
   * else the timer is set again (timers of a sleeping page fire late). After
   * 'online' a backoff ends now, unless a Retry-After still forbids it.
   */
  wake(type: string, at: number): void;
  /** No more timers; the attempt in flight, if any, is forgotten and not retried. */
  stop(): void;
}

/** A Refresher of attempt (rejecting with ReauthRequiredError when retrying cannot help); now and random as TokenManagerOptions'. */
export function refresher(attempt: () => Promise<string>, now: () => number, random: () => number): Refresher {
  let inflight: Promise<string> | null | undefined;
  /** The one timer: the scheduled refresh, or while retrying the end of a backoff. */
  let timer: ReturnType<typeof setTimeout> | undefined;
  let retrying: boolean | undefined;
  let failures = 0;
  let error: unknown;
  /** Epoch ms before which the last answer's Retry-After forbids the next attempt. */
  let notBefore = 0;
  /** Raised by stop(): the outcome of an attempt begun before is not retried. */
  let epoch = 0;

  const r: Refresher = {
    run: () => (!inflight && retrying ? Promise.reject(error) : start()),
    kick() {
      // start() gives the refresh in flight, if any.
      if (!retrying) start().catch(() => {});
    },
    at(at) {
      if (retrying) return;
      clearTimeout(timer);
      if (isFinite(at)) timer = setTimeout(() => (now() < at ? r.at(at) : r.kick()), Math.min(MAX_TIMER, at - now()));
    },
    reset() {
      clearTimeout(timer);
      retrying = false;
      failures = 0;
    },
    wake(type, at) {
      const doc = (globalThis as { document?: { visibilityState?: string } }).document;
      if (type === "visibilitychange" && doc?.visibilityState === "hidden") return;
      if (type === "online" && retrying && now() >= notBefore) r.reset();
      if (now() >= at) r.kick();
      else r.at(at);
    },
    stop() {
      epoch++;
      r.reset();
      inflight = null;
    },
  };

  function start(): Promise<string> {
    if (inflight) return inflight;
    const e0 = epoch;
    // A success brings new tokens, and with them reset().
    const p = attempt().catch((e: unknown) => {
      if (!(e instanceof ReauthRequiredError) && e0 === epoch) retry(e);
      throw e;
    });
    const done = () => {
      if (inflight === p) inflight = null;
    };
    p.then(done, done);
    return (inflight = p);
  }

  function retry(e: unknown): void {
    error = e;
    const [floor, wait] = retryWait(++failures, e, random);
    notBefore = now() + floor;
    clearTimeout(timer);
    retrying = true;
    timer = setTimeout(() => {
      retrying = false;
      start().catch(() => {});
    }, wait);
  }

  return r;
}
