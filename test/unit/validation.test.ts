import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MessageStatus } from '../../src/consumer/message.ts'
import { Connection, Consumer, Publisher, waitForSigterm } from '../../src/index.ts'
import { toPublishOptions } from '../../src/publisher/options.ts'
import { guardLogger } from '../../src/util/logger.ts'
import { checkInt, checkShortString, checkTimeout, toBody } from '../../src/util/validate.ts'

test('short strings are counted in UTF-8 bytes', () => {
  checkShortString('queueName', 'a'.repeat(255))
  assert.throws(() => checkShortString('queueName', 'a'.repeat(256)), RangeError)
  // 100 three-byte characters: 300 bytes, 100 UTF-16 units.
  assert.throws(
    () => checkShortString('queueName', '€'.repeat(100)),
    /queueName must be at most 255 UTF-8 bytes, got 300/,
  )
  assert.throws(() => checkShortString('exchange', 42), TypeError)
})

test('integers within bounds', () => {
  checkInt('prefetch', 1, 1, 65535)
  checkInt('prefetch', 65535, 1, 65535)
  for (const bad of [0, 70000, 1.5, Number.NaN, '3'])
    assert.throws(() => checkInt('prefetch', bad, 1, 65535), /prefetch/)
})

test('bodies: string, Buffer, Uint8Array, nothing else', () => {
  assert.deepEqual(toBody('é'), Buffer.from('é'))
  const buf = Buffer.from([1, 2, 3])
  assert.equal(toBody(buf), buf)
  const view = new Uint8Array([9, 8, 7, 6]).subarray(1, 3)
  assert.deepEqual([...toBody(view)], [8, 7])
  for (const bad of [42, null, undefined, {}, [1]]) assert.throws(() => toBody(bad), TypeError)
})

test('publish options: persistent and mandatory by default, expiration in ms as a string', () => {
  assert.deepEqual(toPublishOptions(undefined), { persistent: true, mandatory: true })
  const o = toPublishOptions({
    expiration: 30_000,
    persistent: false,
    messageId: 'm1',
    headers: { a: 1 },
    priority: 3,
  })
  assert.equal(o.expiration, '30000')
  assert.equal(o.persistent, false)
  assert.equal(o.messageId, 'm1')
  assert.deepEqual(o.headers, { a: 1 })
  assert.equal(o.priority, 3)
  assert.throws(() => toPublishOptions({ expiration: -1 }), RangeError)
  assert.throws(() => toPublishOptions({ messageId: 'x'.repeat(256) }), RangeError)
  assert.throws(() => toPublishOptions({ headers: [] as unknown as Record<string, unknown> }), TypeError)
  assert.throws(() => toPublishOptions({ callbacks: { ackCallback: 1 as unknown as () => void } }), TypeError)
})

test('MessageStatus values are the lower-case names', () => {
  assert.deepEqual(MessageStatus, {
    SUCCESS: 'success',
    FAIL_RETRY_LATER: 'fail_retry_later',
    FAIL_DO_NOT_RETRY: 'fail_do_not_retry',
    HANDLED_VIA_CALLBACK: 'handled_via_callback',
  })
})

test('timeouts: 0..2^31-1 or Infinity; NaN, negatives and longer finite waits are refused', () => {
  assert.equal(checkTimeout('timeout', 0), 0)
  assert.equal(checkTimeout('timeout', 2 ** 31 - 1), 2 ** 31 - 1)
  assert.equal(checkTimeout('timeout', Number.POSITIVE_INFINITY), Number.POSITIVE_INFINITY)
  for (const bad of [Number.NaN, -1, 2 ** 31, Number.NEGATIVE_INFINITY, '10', null]) {
    assert.throws(() => checkTimeout('timeout', bad), RangeError, String(bad))
  }
  assert.throws(() => waitForSigterm(2 ** 31 + 1), RangeError)
  assert.throws(() => waitForSigterm(Number.NaN), RangeError)
})

test('loggers: a missing method is named at construction; a throwing logger never escapes', () => {
  const calls: string[] = []
  const { warn: _omitted, ...noWarn } = { debug() {}, info() {}, warn() {}, error() {} }
  assert.throws(() => guardLogger('logger', noWarn), /logger\.warn must be a function/)
  assert.throws(() => guardLogger('logger', null), TypeError)
  assert.throws(() => new Connection({ logger: noWarn as never }), /logger\.warn must be a function/)
  assert.throws(
    () => new Consumer({ queueName: 'q', taskFunction: () => 'success', logger: noWarn as never }),
    /logger\.warn/,
  )
  assert.throws(
    () => new Publisher({ kind: 'sync', logger: { ...noWarn, warn: 1 } as never }),
    /logger\.warn/,
  )
  const throwing = {
    debug: () => calls.push('debug'),
    info: () => calls.push('info'),
    warn(this: unknown, _obj: object, msg?: string) {
      calls.push(`warn ${msg} ${this === throwing}`)
      throw new Error('logger broke')
    },
    error: () => {
      throw new Error('logger broke')
    },
  }
  const safe = guardLogger('logger', throwing)
  safe.warn({}, 'hello')
  safe.error({}, 'x')
  safe.debug({})
  assert.deepEqual(calls, ['warn hello true', 'debug'])
  assert.equal(guardLogger('logger', safe), safe)
})

test('send options: booleans are booleans, expiration may be digits, timestamps are checked, unknown names are refused', () => {
  assert.throws(() => toPublishOptions({ persistent: 'yes' as never }), /persistent must be true or false/)
  assert.throws(() => toPublishOptions({ mandatory: 1 as never }), /mandatory must be true or false/)
  assert.equal(toPublishOptions({ expiration: '60000' }).expiration, '60000')
  assert.equal(toPublishOptions({ expiration: '007' }).expiration, '7')
  assert.throws(() => toPublishOptions({ expiration: '1e3' }), RangeError)
  assert.throws(() => toPublishOptions({ expiration: '99999999999' }), RangeError)
  assert.throws(() => toPublishOptions({ expiration: -1 }), RangeError)
  assert.equal(toPublishOptions({ timestamp: new Date(5_500) }).timestamp, 5)
  assert.equal(toPublishOptions({ timestamp: 1_700_000_000 }).timestamp, 1_700_000_000)
  assert.throws(() => toPublishOptions({ timestamp: new Date(Number.NaN) }), RangeError)
  assert.throws(() => toPublishOptions({ timestamp: 1.5 }), RangeError)
  assert.throws(() => toPublishOptions({ timestamp: '2024' as never }), RangeError)
  assert.throws(
    () => toPublishOptions({ expiry: 1000 } as never),
    /unknown send option 'expiry' \(did you mean 'expiration'\?\)/,
  )
  assert.throws(() => toPublishOptions({ msgId: 'x' } as never), /did you mean 'messageId'/)
  assert.throws(() => toPublishOptions({ header: {} } as never), /did you mean 'headers'/)
})

test('queue arguments: values AMQP cannot encode are named at construction', () => {
  const make = (queueArgs: Record<string, unknown>) =>
    new Consumer({ queueName: 'q', taskFunction: () => 'success', queueArgs })
  make({ 'x-queue-type': 'quorum', 'x-max-length': 10, nested: { list: [1, 'a', null, Buffer.from('x')] } })
  assert.throws(
    () => make({ 'x-fn': () => 1 }),
    /queueArgs\['x-fn'\] cannot be sent over AMQP \(a function\)/,
  )
  assert.throws(() => make({ big: 10n }), /bigint/)
  assert.throws(() => make({ nested: { when: new Date() } }), /queueArgs\['nested'\]\['when'\].*Date/)
  assert.throws(() => make({ list: [Symbol('s')] }), /queueArgs\['list'\]\[0\]/)
  // What amqplib would fail to encode after sending half a request: refused at the call instead.
  make({ 'x-max-age': { '!': 'long', value: 5 } })
  assert.throws(
    () => make({ bogus: { '!': 'nope', value: 1 } }),
    /queueArgs\['bogus'\] is not a typed AMQP value/,
  )
  assert.throws(() => make({ bogus: { '!': 'long' } }), /is not a typed AMQP value/)
  assert.throws(() => make({ ['k'.repeat(256)]: 1 }), RangeError)
  const cycle: Record<string, unknown> = { a: 1 }
  cycle.self = cycle
  assert.throws(() => make({ nested: cycle }), /queueArgs\['nested'\]\['self'\] .*cycle/)
  const shared = { x: 1 }
  make({ a: shared, b: shared, list: [shared, shared] }) // the same object twice is no cycle
})

test('every timeout option: Infinity means no limit, NaN and negatives are a RangeError', () => {
  for (const bad of [Number.NaN, -1]) {
    assert.throws(() => new Connection({ connectionTimeout: bad }), RangeError)
    assert.throws(() => new Publisher({ kind: 'async', confirmTimeout: bad }), RangeError)
    assert.throws(
      () => new Consumer({ queueName: 'q', taskFunction: () => 'success', taskTimeout: bad }),
      RangeError,
    )
  }
  new Connection({ connectionTimeout: Number.POSITIVE_INFINITY })
  new Publisher({ kind: 'async', confirmTimeout: Number.POSITIVE_INFINITY })
  new Consumer({ queueName: 'q', taskFunction: () => 'success', taskTimeout: Number.POSITIVE_INFINITY })
})
