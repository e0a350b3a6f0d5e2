// Argument checks shared by Publisher and Consumer. Each throws TypeError/RangeError naming the
// option and what is allowed, before anything reaches the broker.

/** `String.prototype.isWellFormed` (ES2024; in Node since 20). */
interface WellFormed {
  isWellFormed(): boolean
}

/** AMQP short strings (queue, exchange, routing key, consumer tag) are at most 255 UTF-8 bytes. */
export function checkShortString(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') throw new TypeError(`${name} must be a string, got ${typeof value}`)
  // A lone surrogate (half of an emoji cut by a slice) goes out as U+FFFD: the broker would know the
  // name under another spelling than the one given.
  if (!(value as unknown as WellFormed).isWellFormed()) {
    throw new TypeError(`${name} must be well-formed UTF-16 (it holds a lone surrogate)`)
  }
  // A UTF-16 unit is at most 3 UTF-8 bytes: short names need no count (the common case, per message).
  if (value.length <= 85) return
  const bytes = Buffer.byteLength(value, 'utf8')
  if (bytes > 255) throw new RangeError(`${name} must be at most 255 UTF-8 bytes, got ${bytes}`)
}

/** An integer option within [min, max]. */
export function checkInt(name: string, value: unknown, min: number, max: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer between ${min} and ${max}, got ${String(value)}`)
  }
}

/** A message body: string (sent as UTF-8), Buffer or Uint8Array. */
export function toBody(body: unknown): Buffer {
  if (typeof body === 'string') return Buffer.from(body, 'utf8')
  if (Buffer.isBuffer(body)) return body
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength)
  const got = body === null ? 'null' : typeof body
  throw new TypeError(`body must be a string, Buffer or Uint8Array, got ${got}`)
}

/** The longest delay a Node timer keeps: a longer one fires after 1 ms. */
export const maxTimerMs = 2 ** 31 - 1

/**
 * A wait in ms: 0..2^31-1, or `Infinity` for no limit. NaN, negatives and finite values a timer
 * cannot hold are refused rather than turned into a 1 ms wait.
 */
export function checkTimeout(name: string, value: unknown): number {
  if (value === Number.POSITIVE_INFINITY) return value
  if (typeof value !== 'number' || !(value >= 0 && value <= maxTimerMs)) {
    throw new RangeError(
      `${name} must be a number of ms between 0 and ${maxTimerMs}, or Infinity, got ${String(value)}`,
    )
  }
  return value
}

/**
 * An AMQP field table (queue arguments): values AMQP can encode — strings, numbers, booleans,
 * null, Buffers, arrays and nested tables. A function, symbol, BigInt or Date (which amqplib
 * would send as an empty table) is named here rather than failing later as a connection error.
 */
export function checkTable(name: string, table: unknown, seen: Set<object> = new Set()): void {
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw new TypeError(`${name} must be an object`)
  }
  if (seen.has(table)) throw new TypeError(`${name} cannot be sent over AMQP (it holds itself: a cycle)`)
  seen.add(table)
  for (const [key, value] of Object.entries(table)) {
    // A table's keys travel as AMQP short strings.
    if (Buffer.byteLength(key) > 255) throw new RangeError(`${name} has a key over 255 bytes`)
    checkFieldValue(`${name}['${key}']`, value, seen)
  }
  seen.delete(table)
}

/** The type tags amqplib takes in an explicitly typed value, `{ '!': 'long', value: 5 }`. */
const typeTags: ReadonlySet<string> = new Set([
  'string',
  'object',
  'boolean',
  'double',
  'float64',
  'byte',
  'int8',
  'unsignedbyte',
  'uint8',
  'short',
  'int16',
  'unsignedshort',
  'uint16',
  'int',
  'int32',
  'unsignedint',
  'uint32',
  'long',
  'int64',
  'timestamp',
  'float',
  'decimal',
])

function checkFieldValue(name: string, value: unknown, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'undefined':
      return
    case 'object':
      if (value === null || Buffer.isBuffer(value)) return
      if (value instanceof Date)
        throw new TypeError(`${name} cannot be sent over AMQP (a Date; give a number)`)
      if (Array.isArray(value)) {
        if (seen.has(value))
          throw new TypeError(`${name} cannot be sent over AMQP (it holds itself: a cycle)`)
        seen.add(value)
        for (const [i, item] of value.entries()) checkFieldValue(`${name}[${i}]`, item, seen)
        seen.delete(value)
        return
      }
      if (Object.hasOwn(value, '!')) {
        const tag = (value as Record<string, unknown>)['!']
        if (typeof tag !== 'string' || !typeTags.has(tag) || !Object.hasOwn(value, 'value')) {
          throw new TypeError(
            `${name} is not a typed AMQP value: give { '!': type, value } with a type amqplib knows (e.g. 'long', 'double', 'timestamp')`,
          )
        }
        return
      }
      checkTable(name, value, seen)
      return
    default:
      throw new TypeError(`${name} cannot be sent over AMQP (a ${typeof value})`)
  }
}
