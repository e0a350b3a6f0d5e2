import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { isPlain, isPlainWithHeaders, type PublishOptions } from '../../src/amqp/channel-session.ts'
import {
  encodePublish,
  encodePublishPrefix,
  encodePublishWithHeaders,
  MAX_INLINE_TABLE,
  stringTableSize,
} from '../../src/amqp/frames.ts'
import { toPublishOptions } from '../../src/publisher/options.ts'

// amqplib's own encoders (not exported: reached by path) are the reference for the bytes.
const require = createRequire(import.meta.url)

/** The options if a channel session sends them from pre-encoded frames. */
const asPlain = (options: PublishOptions) => (isPlain(options) ? options : undefined)
const lib = join(dirname(require.resolve('amqplib')), 'lib')
const defs = require(join(lib, 'defs.js'))
const frame = require(join(lib, 'frame.js'))
const args = require(join(lib, 'api_args.js'))

/** What amqplib's connection writes for `channel.publish(exchange, routingKey, body, options)`. */
function amqplibBytes(channel: number, exchange: string, routingKey: string, body: Buffer, options: object) {
  const fields = args.publish(exchange, routingKey, options)
  const parts = [
    defs.encodeMethod(defs.BasicPublish, channel, fields),
    defs.encodeProperties(defs.BasicProperties, channel, body.length, fields),
  ]
  if (body.length > 0) parts.push(frame.makeBodyFrame(channel, body))
  return Buffer.concat(parts)
}

test('pre-encoded publish frames are byte for byte what amqplib sends for the same plain options', () => {
  const bodies = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(100, 7), Buffer.alloc(2048, 1)]
  const names: [string, string][] = [
    ['', 'task_queue'],
    ['orders', 'eu.created'],
    ['', ''],
    ['ex-é', 'clé-🐇'],
    ['x'.repeat(255), 'k'.repeat(255)],
  ]
  let cases = 0
  for (const channel of [1, 2, 65535]) {
    for (const [exchange, routingKey] of names) {
      for (const persistent of [false, true]) {
        for (const mandatory of [false, true]) {
          const options = toPublishOptions({ persistent, mandatory })
          const plain = asPlain(options)
          assert.ok(plain, 'persistent + mandatory only is plain')
          const prefix = encodePublishPrefix(channel, exchange, routingKey, plain.persistent, plain.mandatory)
          for (const body of bodies) {
            const ours = encodePublish(prefix, body)
            assert.deepEqual(ours, amqplibBytes(channel, exchange, routingKey, body, options))
            cases++
          }
        }
      }
    }
  }
  assert.equal(cases, 3 * 5 * 2 * 2 * 4)
})

test('only sends with no property but persistent/mandatory (and callbacks) are plain, and share their options object', () => {
  const callbacks = { ackCallback: () => {} }
  assert.ok(asPlain(toPublishOptions(undefined)))
  assert.equal(toPublishOptions(undefined), toPublishOptions({ callbacks }))
  assert.equal(
    toPublishOptions({ persistent: false }),
    toPublishOptions({ persistent: false, mandatory: true }),
  )
  assert.deepEqual({ ...toPublishOptions(undefined) }, { persistent: true, mandatory: true })
  for (const extra of [
    { headers: {} },
    { messageId: 'm1' },
    { expiration: 1000 },
    { priority: 1 },
    { timestamp: 1 },
    { contentType: 'text/plain' },
    { appId: 'a' },
  ]) {
    assert.equal(asPlain(toPublishOptions(extra)), undefined, JSON.stringify(extra))
  }
  assert.throws(
    () => toPublishOptions({ callbacks: { ackCallback: 1 as never } }),
    /ackCallback must be a function/,
  )
})

test('publish frames with string headers are byte for byte what amqplib sends for the same options', () => {
  const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'
  const tables: Record<string, string>[] = [
    {},
    { traceparent },
    { traceparent, tracestate: 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE' },
    { 'clé-🐇': 'valeur é 🐇', '': '' },
    // Integer-like keys come first in a for…in, in amqplib's encoder as in ours.
    { b: '1', 2: 'two', a: '3', 1: 'one' },
    { ['k'.repeat(255)]: 'v'.repeat(600) },
  ]
  const bodies = [Buffer.alloc(0), Buffer.from('x'), Buffer.alloc(2048, 1)]
  let cases = 0
  for (const channel of [1, 65535]) {
    for (const [exchange, routingKey] of [
      ['', 'task_queue'],
      ['ex-é', 'clé'],
    ] as const) {
      for (const persistent of [false, true]) {
        for (const mandatory of [false, true]) {
          for (const headers of tables) {
            const options = toPublishOptions({ persistent, mandatory, headers })
            assert.ok(isPlainWithHeaders(options), JSON.stringify(Object.keys(headers)))
            assert.equal(isPlain(options), false)
            const size = stringTableSize(options.headers as Record<string, unknown>)
            assert.ok(size !== undefined)
            const prefix = encodePublishPrefix(channel, exchange, routingKey, persistent, mandatory)
            for (const body of bodies) {
              const ours = encodePublishWithHeaders(
                prefix,
                options.headers as Record<string, string>,
                size,
                body,
              )
              assert.deepEqual(ours, amqplibBytes(channel, exchange, routingKey, body, options))
              cases++
            }
          }
        }
      }
    }
  }
  assert.equal(cases, 2 * 2 * 2 * 2 * tables.length * bodies.length)
})

test('only tables of strings with short keys, under the inline limit, are encoded by lapinmq', () => {
  assert.equal(stringTableSize({ traceparent: 'x' }), 1 + 11 + 1 + 4 + 1)
  assert.equal(stringTableSize({ n: 1 }), undefined)
  assert.equal(stringTableSize({ b: Buffer.from('x') }), undefined)
  assert.equal(stringTableSize({ a: 'x', u: undefined }), undefined)
  assert.equal(stringTableSize({ ['k'.repeat(256)]: 'x' }), undefined)
  assert.equal(stringTableSize({ k: 'v'.repeat(MAX_INLINE_TABLE) }), undefined)
  assert.equal(stringTableSize({ k: 'v'.repeat(MAX_INLINE_TABLE - 7) }), MAX_INLINE_TABLE)
  // Only the headers besides persistence and `mandatory`: any other property takes amqplib's encoder.
  assert.equal(isPlainWithHeaders(toPublishOptions({ headers: { a: 'b' }, messageId: 'm' })), false)
  assert.equal(isPlainWithHeaders(toPublishOptions({ headers: { a: 'b' }, expiration: 10 })), false)
  assert.equal(isPlainWithHeaders(toPublishOptions({ persistent: false })), false)
  assert.equal(isPlainWithHeaders({ ...toPublishOptions({ mandatory: false }), headers: { a: 'b' } }), true)
})
