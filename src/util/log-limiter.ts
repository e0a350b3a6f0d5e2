/**
 * @internal Lets one log line through per interval and counts the ones it held back, so a failure
 * that repeats thousands of times a second logs once a second, saying how many it did not log.
 */
export class LogLimiter {
  readonly #intervalMs: number
  #next = Number.NEGATIVE_INFINITY
  #suppressed = 0

  constructor(intervalMs = 1000) {
    this.#intervalMs = intervalMs
  }

  /**
   * A line wants out at `now` (ms, performance.now()): the lines held back since the last one let
   * through (0 or more), or undefined when this one is held back too.
   */
  take(now = performance.now()): number | undefined {
    if (now < this.#next) {
      this.#suppressed++
      return undefined
    }
    this.#next = now + this.#intervalMs
    const suppressed = this.#suppressed
    this.#suppressed = 0
    return suppressed
  }
}
