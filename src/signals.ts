/**
 * Resolves `true` when the process receives SIGTERM or SIGINT, or `false` after `timeout` ms.
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
  if (timeout !== undefined && (!Number.isFinite(timeout) || timeout < 0)) {
    throw new RangeError(`timeout must be a non-negative number of ms, got ${String(timeout)}`)
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
    if (timeout !== undefined) timer = setTimeout(done, timeout, false)
  })
}
