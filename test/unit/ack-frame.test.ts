import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { test } from 'node:test'
import { encodeAck } from '../../src/amqp/frames.ts'

// amqplib's own encoder (not exported: reached by path) is the reference for the bytes.
const require = createRequire(import.meta.url)
const defs = require(join(dirname(require.resolve('amqplib')), 'lib', 'defs.js'))

test('a hand-encoded basic.ack is byte for byte what amqplib sends', () => {
  const tags = [
    1,
    2,
    255,
    256,
    65_535,
    2 ** 31,
    2 ** 32 - 1,
    2 ** 32,
    2 ** 32 + 1,
    2 ** 40 + 12_345,
    2 ** 53 - 1,
  ]
  let cases = 0
  for (const channel of [1, 2, 300, 65_535]) {
    for (const deliveryTag of tags) {
      for (const multiple of [false, true]) {
        const expected = defs.encodeMethod(defs.BasicAck, channel, { deliveryTag, multiple })
        assert.deepEqual(
          encodeAck(channel, deliveryTag, multiple),
          expected,
          `${channel} ${deliveryTag} ${multiple}`,
        )
        cases++
      }
    }
  }
  assert.equal(cases, 88)
})
