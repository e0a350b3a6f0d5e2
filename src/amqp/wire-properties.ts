// The properties of a returned message, compared with those of a send as the broker saw them.
//
// A `basic.return` carries no delivery tag: the publisher finds the returned send among its
// unconfirmed ones by what the broker gives back. Exchange, routing key and body are not enough
// (a headers exchange routes two messages that differ only in their headers differently), so the
// properties count too — compared as they travel on the wire: a send's options are encoded by
// amqplib's own codec and decoded again, exactly as the returned header frame was decoded. Two
// sends that would put different bytes on the wire never compare equal because of a JavaScript
// type (a number sent as a byte, an inherited key, a `Date`, a string with a lone surrogate).
//
// amqplib keeps that codec in a module its `exports` map does not list, so it is loaded by path;
// when it cannot be (a future amqplib), `sameAsSent` answers `undefined` and the caller falls
// back to matching without properties.
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { isDeepStrictEqual } from 'node:util'
import type { PublishOptions } from './channel-session.js'

interface Codec {
  encodeProperties(id: number, channel: number, size: number, fields: object): Buffer
  decode(id: number, buffer: Buffer): object
  publishFields(exchange: string, routingKey: string, options: PublishOptions): object
}

const BASIC_CLASS = 60
/** Frame header (type, channel, size) and content header (class, weight, body size) before the flags. */
const FLAGS_AT = 7 + 12

let codec: Codec | null | undefined

function loadCodec(): Codec | null {
  try {
    const require = createRequire(import.meta.url)
    const lib = join(dirname(require.resolve('amqplib')), 'lib')
    const defs = require(join(lib, 'defs.js')) as Partial<Codec>
    const args = require(join(lib, 'api_args.js')) as { publish?: Codec['publishFields'] }
    const { encodeProperties, decode } = defs
    const publish = args.publish
    if (
      typeof encodeProperties !== 'function' ||
      typeof decode !== 'function' ||
      typeof publish !== 'function'
    ) {
      return null
    }
    return { encodeProperties, decode, publishFields: publish }
  } catch {
    return null
  }
}

/**
 * The properties a send with `options` puts on the wire, as amqplib decodes them on the way back
 * (for a `basic.return`). `undefined` when amqplib's codec is not reachable.
 */
export function wireProperties(options: PublishOptions): object | undefined {
  codec ??= loadCodec()
  if (codec === null) return undefined
  let decoded = seen.get(options)
  if (decoded === undefined) {
    const fields = codec.publishFields('', '', options)
    const frame = codec.encodeProperties(BASIC_CLASS, 0, 0, fields)
    decoded = codec.decode(BASIC_CLASS, frame.subarray(FLAGS_AT, frame.length - 1))
    seen.set(options, decoded)
  }
  return decoded
}

/** Per options object: plain publishes share theirs, and one return may be compared with many sends. */
const seen = new WeakMap<PublishOptions, object>()

/** Whether `returned` (a returned message's decoded properties) are those `options` put on the wire; `undefined` when unknowable. */
export function sameAsSent(options: PublishOptions, returned: object): boolean | undefined {
  const sent = wireProperties(options)
  return sent === undefined ? undefined : isDeepStrictEqual(sent, returned)
}
