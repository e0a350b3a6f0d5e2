import type { BackoffOptions } from '../config.js'

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
