// One refresh at a time, and when the next one starts: at the token's
// refresh time, or when a failure's backoff ends (schedule.ts), never both.
import { ReauthRequiredError } from "./errors.js";
import { retryWait } from "./schedule.js";

const MAX_TIMER = 2 ** 31 - 1;

/** Runs attempt single-flight: now, at a set time, or after a failure's backoff. */
export class Refresher {
  readonly #attempt: () => Promise<string>;
  readonly #now: () => number;
  readonly #random: () => number;
  #inflight?: Promise<string> | null;
  /** The one timer: the scheduled refresh, or while #retrying the end of a backoff. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #retrying?: boolean;
  #failures = 0;
  #error: unknown;
  /** Epoch ms before which the last answer's Retry-After forbids the next attempt. */
  #notBefore = 0;
  /** Raised by stop(): the outcome of an attempt begun before is not retried. */
  #epoch = 0;

  /** attempt refreshes (rejecting with ReauthRequiredError when retrying cannot help); now and random as TokenManagerOptions'. */
  constructor(attempt: () => Promise<string>, now: () => number, random: () => number) {
    this.#attempt = attempt;
    this.#now = now;
    this.#random = random;
  }

  /** The refresh in flight, or a new one; during a backoff, the failure's error (no request outside the backoff schedule). */
  run(): Promise<string> {
    if (!this.#inflight && this.#retrying) return Promise.reject(this.#error);
    return this.#run();
  }

  /** Starts a refresh unless one is in flight or a backoff runs. */
  kick(): void {
    if (!this.#inflight && !this.#retrying) this.#run().catch(() => {});
  }

  /** Starts a refresh at epoch ms `at` (never for Infinity; a time past is now), replacing the one scheduled; nothing during a backoff. */
  at(at: number): void {
    if (this.#retrying) return;
    clearTimeout(this.#timer);
    if (isFinite(at)) {
      this.#timer = setTimeout(() => (this.#now() < at ? this.at(at) : this.kick()), Math.min(MAX_TIMER, at - this.#now()));
    }
  }

  /** New tokens came (refresh, another tab, a login): the failures are over, no retry or wait is left, nothing is scheduled. */
  reset(): void {
    clearTimeout(this.#timer);
    this.#retrying = false;
    this.#failures = 0;
  }

  /**
   * The page is back (event type: visibilitychange, pageshow, resume,
   * online): the refresh due at `at` starts now if that time has passed,
   * else the timer is set again (timers of a sleeping page fire late). After
   * 'online' a backoff ends now, unless a Retry-After still forbids it.
   */
  wake(type: string, at: number): void {
    const doc = (globalThis as { document?: { visibilityState?: string } }).document;
    if (type === "visibilitychange" && doc?.visibilityState === "hidden") return;
    if (type === "online" && this.#retrying && this.#now() >= this.#notBefore) this.reset();
    if (this.#now() >= at) this.kick();
    else this.at(at);
  }

  /** No more timers; the attempt in flight, if any, is forgotten and not retried. */
  stop(): void {
    this.#epoch++;
    this.reset();
    this.#inflight = null;
  }

  #run(): Promise<string> {
    if (this.#inflight) return this.#inflight;
    const epoch = this.#epoch;
    // A success brings new tokens, and with them reset().
    const p = this.#attempt().catch((e: unknown) => {
      if (!(e instanceof ReauthRequiredError) && epoch === this.#epoch) this.#retry(e);
      throw e;
    });
    const done = () => {
      if (this.#inflight === p) this.#inflight = null;
    };
    p.then(done, done);
    return (this.#inflight = p);
  }

  #retry(e: unknown): void {
    this.#error = e;
    const [floor, wait] = retryWait(++this.#failures, e, this.#random);
    this.#notBefore = this.#now() + floor;
    clearTimeout(this.#timer);
    this.#retrying = true;
    this.#timer = setTimeout(() => {
      this.#retrying = false;
      this.#run().catch(() => {});
    }, wait);
  }
}
