// How `lapinmq consume` prints a message, and `lapinmq call` a reply: its body as is, or one JSON
// object per line (--json) with the properties and headers. A body that is not valid UTF-8 is shown in base64 in JSON.
// On a terminal, nothing from a message may drive the terminal: control characters are shown
// escaped (`\x1b`), the way a reader can see them, never sent as they are.
import type { Message, MessageProperties } from '../index.js'

/** What is printed of a message: a delivery's fields, or a reply's (which has no delivery fields). */
export interface Shown {
  readonly body: Buffer
  readonly properties: MessageProperties
  readonly headers: Record<string, unknown>
  readonly exchange?: string
  readonly routingKey?: string
  readonly redelivered?: boolean
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * C0 controls but tab and newline, DEL, and the C1 controls (U+0080 to U+009F: 8-bit escape
 * sequences to some terminals).
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const controlInText = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it finds
const controlInName = /[\x00-\x1f\x7f-\x9f]/g

const hex = (code: number): string => `\\x${code.toString(16).padStart(2, '0')}`

/** A name or id (one line), its control characters escaped: safe for a terminal and a log line. */
export function printable(text: string): string {
  return text.replace(controlInName, (c) => hex(c.charCodeAt(0)))
}

/**
 * The body for a terminal: UTF-8 text with its control characters escaped (lines and tabs kept);
 * a body that is not UTF-8 as printable ASCII with every other byte escaped.
 */
function terminalBody(body: Buffer): Buffer {
  let text: string
  try {
    text = utf8.decode(body).replace(controlInText, (c) => hex(c.charCodeAt(0)))
  } catch {
    text = ''
    for (const byte of body) {
      text +=
        byte === 0x0a || byte === 0x09 || (byte >= 0x20 && byte < 0x7f)
          ? String.fromCharCode(byte)
          : hex(byte)
    }
  }
  return Buffer.from(text)
}

/**
 * The body, with a newline after it unless it ends with one. `terminal`: shown safely (see
 * above); else the exact bytes.
 */
export function plainLine(message: Message, terminal = false): Buffer {
  return withNewline(terminal ? terminalBody(message.body) : message.body)
}

/** A body alone (a reply): its exact bytes; on a terminal, shown safely and ended with a newline. */
export function plainBody(body: Buffer, terminal: boolean): Buffer {
  return terminal ? withNewline(terminalBody(body)) : body
}

function withNewline(body: Buffer): Buffer {
  return body.at(-1) === 0x0a ? body : Buffer.concat([body, Buffer.from('\n')])
}

/**
 * One line of JSON: body (UTF-8, else base64 with `bodyEncoding`), properties, headers, and the
 * delivery's exchange, routing key and redelivered flag when it is a delivery.
 */
export function jsonLine(message: Shown): string {
  const { headers: _headers, ...properties } = message.properties
  let body: string
  let bodyEncoding: 'utf8' | 'base64' = 'utf8'
  try {
    body = utf8.decode(message.body)
  } catch {
    body = message.body.toString('base64')
    bodyEncoding = 'base64'
  }
  const line = {
    body,
    bodyEncoding,
    properties,
    headers: message.headers,
    exchange: message.exchange,
    routingKey: message.routingKey,
    redelivered: message.redelivered,
  }
  // JSON escapes C0 controls itself; DEL and C1 controls are escaped too (still the same JSON).
  return `${JSON.stringify(line, jsonValue).replace(/[\x7f-\x9f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}\n`
}

/** Header values JSON cannot show as they are: byte arrays (after Buffer's toJSON) and bigints. */
function jsonValue(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString()
  const v = value as { type?: unknown; data?: unknown } | null
  if (v !== null && typeof v === 'object' && v.type === 'Buffer' && Array.isArray(v.data)) {
    return Buffer.from(v.data as number[]).toString('utf8')
  }
  return value
}
