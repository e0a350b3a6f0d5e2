// Whether a value is a promise-like, asked safely.

/** A promise or any thenable; a result whose `then` cannot even be read is not one (and not a status). */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  try {
    return typeof (value as PromiseLike<unknown> | null)?.then === 'function'
  } catch {
    return false
  }
}
