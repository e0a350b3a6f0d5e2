// Watches the event loop for the stalls that cost a connection: a task that keeps the loop busy
// stops heartbeats, and the broker drops the connection after two missed ones. A tick every eighth
// of a heartbeat measures how late it runs: a tick late by more than half the heartbeat means the
// loop was blocked that long (give or take one tick). A blocked loop can only be reported once it
// runs again: the report says how long it was blocked.
//
// Not perf_hooks.monitorEventLoopDelay: its reset() forgets the time of its last sample, so a stall
// that ends just before a periodic reset is never recorded (it lost every 3-8 s stall of the
// heartbeat-starvation test); and without resets its max only ever grows.

/** Reports event-loop stalls longer than half the heartbeat. */
export class LoopWatchdog {
  readonly #onBlocked: (delayMs: number, heartbeatMs: number) => void
  #heartbeatMs = 0
  #tickMs = 0
  #lastTick = 0
  #timer: NodeJS.Timeout | undefined

  /** @param onBlocked called with the stall and the heartbeat, in ms */
  constructor(onBlocked: (delayMs: number, heartbeatMs: number) => void) {
    this.#onBlocked = onBlocked
  }

  /** The heartbeat watched for, in ms (0: not watching). */
  get heartbeatMs(): number {
    return this.#heartbeatMs
  }

  /** Watches for stalls past half of `heartbeatMs`; 0 stops watching. Restarts on a new heartbeat. */
  start(heartbeatMs: number): void {
    if (heartbeatMs === this.#heartbeatMs) return
    this.stop()
    if (!(heartbeatMs > 0)) return
    this.#heartbeatMs = heartbeatMs
    this.#tickMs = Math.max(20, Math.floor(heartbeatMs / 8))
    this.#lastTick = performance.now()
    // Unref'd: it never keeps the process alive.
    this.#timer = setInterval(() => this.#check(), this.#tickMs)
    this.#timer.unref()
  }

  /** Reports a stall that has just ended, then clears the timer. Idempotent. */
  stop(): void {
    if (!this.#timer) return
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#check()
    this.#heartbeatMs = 0
  }

  #check(): void {
    const now = performance.now()
    const late = now - this.#lastTick - this.#tickMs
    this.#lastTick = now
    if (late > this.#heartbeatMs / 2) this.#onBlocked(Math.round(late), this.#heartbeatMs)
  }
}
