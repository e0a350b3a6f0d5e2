/** Callers waiting for one condition, all woken together when it holds. */
export class Waiters {
  #wakers: (() => void)[] = []

  get size(): number {
    return this.#wakers.length
  }

  /** Resolves at the next `wakeAll()`. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.#wakers.push(resolve))
  }

  wakeAll(): void {
    if (this.#wakers.length === 0) return
    const wakers = this.#wakers
    this.#wakers = []
    for (const wake of wakers) wake()
  }
}

/**
 * Waits for `promise`, but rejects with `reason()` as soon as `signal` aborts (at once if it
 * already has). `promise` itself goes on; its outcome is then ignored.
 */
export function unlessAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  reason: () => Error,
): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) {
    promise.catch(() => undefined)
    return Promise.reject(reason())
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(reason())
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** Waits for `promise`, or `ms` milliseconds, whichever comes first; never rejects. */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  if (ms === Number.POSITIVE_INFINITY) {
    await promise.catch(() => undefined)
    return
  }
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms)
    }),
  ])
  clearTimeout(timer)
}
