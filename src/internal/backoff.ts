/** How reconnects and channel reopens are spaced. */
export interface BackoffOptions {
  /**
   * Delay before the first retry, in ms.
   * @default 100
   */
  initialDelay?: number
  /**
   * Longest delay between two attempts, in ms (jitter included).
   * @default 30000
   */
  maxDelay?: number
  /**
   * Growth of the delay from one attempt to the next.
   * @default 2
   */
  factor?: number
  /**
   * Random spread of each delay, as a fraction (0.2: ±20%), so many clients do not retry in step.
   * @default 0.2
   */
  jitter?: number
}

/**
 * Delay before retry number `attempt` (0 for the first retry): capped exponential growth with
 * jitter. The cap holds with the jitter included. `random` is injectable for tests.
 */
export function backoffDelay(attempt: number, options: BackoffOptions = {}, random = Math.random): number {
  const { initialDelay = 100, maxDelay = 30_000, factor = 2, jitter = 0.2 } = options
  const base = Math.min(initialDelay * factor ** attempt, maxDelay / (1 + jitter))
  const spread = base * jitter * (2 * random() - 1)
  return Math.max(0, Math.min(maxDelay, Math.round(base + spread)))
}
