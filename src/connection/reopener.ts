import { setTimeout as sleep } from 'node:timers/promises'
import type { BackoffOptions } from '../config.js'
import { backoffDelay } from './backoff.js'

/**
 * Runs a (re)open task until it succeeds, one run at a time, with backoff between failures. A
 * request made while a run is under way schedules another run after it, so a close that happens
 * during a reopen is never missed. `shouldRun` stops it (the owner is stopping); `onFailure` says
 * whether to try again (it is told the attempt, from 0, and the delay before the next).
 */
export class Reopener {
  readonly #task: () => Promise<void>
  readonly #shouldRun: () => boolean
  readonly #onFailure: (error: unknown, attempt: number, delay: number) => boolean
  readonly #backoff: BackoffOptions
  #requested = false
  /** A wait asked for before the next run (see request). */
  #delay = 0
  #running: Promise<void> | undefined
  #abort = new AbortController()

  constructor(options: {
    task: () => Promise<void>
    shouldRun: () => boolean
    onFailure: (error: unknown, attempt: number, delay: number) => boolean
    backoff?: BackoffOptions
  }) {
    this.#task = options.task
    this.#shouldRun = options.shouldRun
    this.#onFailure = options.onFailure
    this.#backoff = options.backoff ?? {}
  }

  /** True while a run is under way. */
  get active(): boolean {
    return this.#running !== undefined
  }

  /**
   * Asks for a (re)open; starts a run unless one is under way (which will then run again). With
   * `delay`, the next run waits that many ms first.
   */
  request(delay = 0): void {
    this.#requested = true
    this.#delay = Math.max(this.#delay, delay)
    this.#running ??= this.#loop().finally(() => {
      this.#running = undefined
      if (this.#requested && this.#shouldRun()) this.request()
    })
  }

  /** Ends any backoff wait at once; the loop then sees `shouldRun()` false and ends. */
  cancel(): void {
    this.#requested = false
    this.#delay = 0
    this.#abort.abort()
    this.#abort = new AbortController()
  }

  async #loop(): Promise<void> {
    let attempt = 0
    while (this.#requested && this.#shouldRun()) {
      this.#requested = false
      if (this.#delay > 0) {
        const delay = this.#delay
        this.#delay = 0
        try {
          await sleep(delay, undefined, { signal: this.#abort.signal })
        } catch {
          return
        }
        if (!this.#shouldRun()) return
      }
      try {
        await this.#task()
        attempt = 0
      } catch (err) {
        const delay = backoffDelay(attempt, this.#backoff)
        if (!this.#onFailure(err, attempt++, delay) || !this.#shouldRun()) return
        this.#requested = true
        try {
          await sleep(delay, undefined, { signal: this.#abort.signal })
        } catch {
          return
        }
      }
    }
  }
}
