/**
 * Resolves `true` when the process receives SIGTERM or SIGINT, or `false` after `timeout` ms
 * (none, or `Infinity`: no limit).
 * Installs its handlers only while it waits, and removes them after: the usual way to keep a
 * container's consumer running until Kubernetes (or Ctrl-C) asks it to stop.
 *
 * @example
 * ```ts
 * await consumer.start()
 * await waitForSigterm()
 * await consumer.stop()
 * ```
 */
export function waitForSigterm(timeout?: number): Promise<boolean> {
  // A finite wait longer than a timer holds would fire after 1 ms; Infinity waits for the signal only.
  if (
    timeout !== undefined &&
    timeout !== Number.POSITIVE_INFINITY &&
    !(typeof timeout === 'number' && timeout >= 0 && timeout <= 2 ** 31 - 1)
  ) {
    throw new RangeError(
      `timeout must be a number of ms between 0 and ${2 ** 31 - 1}, or Infinity, got ${String(timeout)}`,
    )
  }
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const done = (received: boolean): void => {
      process.off('SIGTERM', onSignal)
      process.off('SIGINT', onSignal)
      clearTimeout(timer)
      resolve(received)
    }
    const onSignal = (): void => done(true)
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
    if (timeout !== undefined && timeout !== Number.POSITIVE_INFINITY)
      timer = setTimeout(done, timeout, false)
  })
}
