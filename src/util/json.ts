// JSON bodies: encoded and parsed the same way wherever lapinmq sends or reads one, and never quoted
// in an error (a body may hold anything).
import { LapinError } from '../errors.js'

/** `value` as UTF-8 JSON; a TypeError that says why not, without quoting the value. */
export function encodeJson(value: unknown): Buffer {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (err) {
    const reason = (err as Error)?.message ?? ''
    const why = /circular/i.test(reason)
      ? 'it holds a cycle'
      : /bigint/i.test(reason)
        ? 'it holds a BigInt'
        : `JSON.stringify threw ${(err as Error)?.name ?? 'an error'}`
    throw new TypeError(`the value cannot be sent as JSON: ${why}`, { cause: err })
  }
  if (text === undefined) {
    throw new TypeError(`the value cannot be sent as JSON: JSON has no encoding for ${describeType(value)}`)
  }
  return Buffer.from(text, 'utf8')
}

function describeType(value: unknown): string {
  if (value === undefined) return 'undefined'
  return typeof value === 'function'
    ? 'a function'
    : typeof value === 'symbol'
      ? 'a symbol'
      : `this ${typeof value}`
}

/**
 * `body` parsed as UTF-8 JSON, or the `INVALID_BODY` error to throw: `what` names the body (the
 * error never quotes it, and has no cause: the parser's message quotes it).
 */
export function parseJson(body: Buffer, what: string): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    return new LapinError('INVALID_BODY', `${what} is not valid JSON (${body.length} bytes)`)
  }
}
