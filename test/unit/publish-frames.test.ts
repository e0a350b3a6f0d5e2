import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { isPlain, type PublishOptions } from '../../src/amqp/channel-session.ts'
import { encodePublish, encodePublishPrefix } from '../../src/amqp/frames.ts'
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
