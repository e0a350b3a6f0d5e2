// The retry ladder's pure parts: its option checks and queue names, the attempt counter it trusts
// (and clamps), the reasons it writes, the requeue backoff, and the log rate limit.
import assert from 'node:assert/strict'
import { mock, test } from 'node:test'
import { Failures } from '../../src/consumer/failures.ts'
import type { Message } from '../../src/consumer/message.ts'
import { errorReason, failureHeaders, failuresSoFar } from '../../src/retry/headers.ts'
import { sendOptionsOf } from '../../src/retry/ladder.ts'
import { resolveRetry } from '../../src/retry/options.ts'
import { LogLimiter } from '../../src/util/log-limiter.ts'
import type { Logger } from '../../src/util/logger.ts'

const ladder = resolveRetry({ delays: [1000, 10_000, 1000] }, 'jobs', false)

/** Headers of a message the broker brought back from `queue` after its TTL. */
function backFrom(queue: string, attempt: unknown): Record<string, unknown> {
  return { 'x-lapinmq-attempt': attempt, 'x-death': [{ queue, reason: 'expired', count: 1 }] }
}

test('the ladder names a delay queue per step and declares each distinct one once, then the dead-letter queue', () => {
  assert.deepEqual(ladder.delayQueues, ['jobs.retry.1000', 'jobs.retry.10000', 'jobs.retry.1000'])
  assert.equal(ladder.deadLetterQueue, 'jobs.dead')
  assert.deepEqual(
    ladder.topology.steps.map((s) => s.key),
    ['q:jobs.retry.1000', 'q:jobs.retry.10000', 'q:jobs.dead'],
  )
  assert.equal(resolveRetry({ delays: [5], deadLetterQueue: false }, 'q', false).deadLetterQueue, false)
  assert.equal(
    resolveRetry({ delays: [5], deadLetterQueue: 'all.dead' }, 'q', true).deadLetterQueue,
    'all.dead',
  )
})

test('retry options are checked at construction, naming the field', () => {
  const bad: [unknown, string, RegExp][] = [
    [{ delays: [] }, 'q', /retry.delays must be a non-empty array/],
    [{ delays: [0] }, 'q', /retry.delays\[0\]/],
    [{ delays: [1.5] }, 'q', /retry.delays\[0\]/],
    [{ delays: [2 ** 31] }, 'q', /retry.delays\[0\]/],
    [{ delays: [100], delay: 3 }, 'q', /unknown field 'delay'/],
    [{ delays: [100] }, '', /named queue/],
    [{ delays: [100], deadLetterQueue: 'q' }, 'q', /must differ/],
    [{ delays: [100], deadLetterQueue: 'q.retry.100' }, 'q', /must differ/],
    [{ delays: [100], deadLetterQueue: 'amq.x' }, 'q', /amq/],
    [{ delays: [100] }, 'x'.repeat(250), /255 bytes/],
    [null, 'q', /retry must be an object/],
  ]
  for (const [retry, queue, message] of bad) {
    assert.throws(() => resolveRetry(retry as never, queue, false), message, JSON.stringify(retry))
  }
})

test("the attempt counter is trusted only on a message back from one of the ladder's own delay queues", () => {
  assert.equal(failuresSoFar(backFrom('jobs.retry.10000', 2), ladder), 2)
  assert.equal(failuresSoFar({ 'x-lapinmq-attempt': 2 }, ladder), 0, 'no x-death: a producer wrote it')
  assert.equal(failuresSoFar(backFrom('other.retry.1000', 2), ladder), 0, "another ladder's queue")
  const rejected = { 'x-lapinmq-attempt': 2, 'x-death': [{ queue: 'jobs.retry.1000', reason: 'rejected' }] }
  assert.equal(failuresSoFar(rejected, ladder), 0, 'not an expiry')
  assert.equal(failuresSoFar({ 'x-lapinmq-attempt': 2, 'x-death': 'x' }, ladder), 0)
  assert.equal(failuresSoFar({ 'x-lapinmq-attempt': 2, 'x-death': [null] }, ladder), 0)
})

test('a forged counter is clamped: it can neither skip the ladder nor overflow it', () => {
  const cases: [unknown, number][] = [
    [-1, 0],
    [1e12, 3],
    ['x', 0],
    ['2', 0],
    [Number.NaN, 0],
    [Number.POSITIVE_INFINITY, 3],
    [2.7, 2],
    [BigInt(2), 2],
    [undefined, 0],
  ]
  for (const [value, expected] of cases) {
    assert.equal(failuresSoFar(backFrom('jobs.retry.1000', value), ladder), expected, String(value))
  }
})

test('failure headers: a new ladder records the first failure and the original routing; later ones keep them', () => {
  const message = { headers: { app: 'kept' }, exchange: 'orders', routingKey: 'orders.created' }
  const first = failureHeaders(message, 1, 0, 'fail_retry_later', 'jobs')
  assert.equal(first.app, 'kept')
  assert.equal(first['x-lapinmq-attempt'], 1)
  assert.equal(first['x-lapinmq-original-exchange'], 'orders')
  assert.equal(first['x-lapinmq-original-routing-key'], 'orders.created')
  assert.equal(first['x-lapinmq-queue'], 'jobs')
  assert.ok(typeof first['x-lapinmq-first-failure'] === 'number')
  const again = { headers: { ...first, 'x-lapinmq-first-failure': 1234 }, exchange: '', routingKey: 'jobs' }
  const second = failureHeaders(again, 2, 1, 'the task timed out after 5 ms', 'jobs')
  assert.equal(second['x-lapinmq-first-failure'], 1234)
  assert.equal(second['x-lapinmq-original-exchange'], 'orders', 'the delay queue routing is not the original')
  assert.equal(second['x-lapinmq-original-routing-key'], 'orders.created')
  assert.equal(second['x-lapinmq-last-error'], 'the task timed out after 5 ms')
  // A fresh message carrying a producer's values starts a new ladder: they are replaced.
  const forged = {
    headers: { 'x-lapinmq-first-failure': 1, 'x-lapinmq-original-exchange': 'fake' },
    exchange: 'e',
    routingKey: 'k',
  }
  const replaced = failureHeaders(forged, 1, 0, 'r', 'jobs')
  assert.notEqual(replaced['x-lapinmq-first-failure'], 1)
  assert.equal(replaced['x-lapinmq-original-exchange'], 'e')
})

test('an error reason is its name and message cut to 256 characters, never a stack; other thrown values by type only', () => {
  assert.equal(errorReason(new RangeError('too far')), 'RangeError: too far')
  const long = errorReason(new Error('x'.repeat(1000)))
  assert.equal(long.length, 256)
  assert.ok(!long.includes('\n    at '))
  assert.equal(errorReason('the body {"card":"4111"}'), 'threw a string')
  assert.equal(errorReason({ body: 'secret' }), 'threw a object')
  assert.equal(errorReason(undefined), 'threw undefined')
  // JSON.parse's message quotes its input: the body.
  let parseError: unknown
  try {
    JSON.parse('card=4111111111111111')
  } catch (err) {
    parseError = err
  }
  assert.doesNotMatch(errorReason(parseError), /4111|card/)
  assert.match(errorReason(parseError), /^SyntaxError/)
})

test("a copy keeps the message's properties and headers, but not expiration, userId, CC or BCC", () => {
  const properties = {
    contentType: 'application/json',
    contentEncoding: undefined,
    headers: undefined,
    deliveryMode: 2,
    priority: 3,
    correlationId: 'c',
    replyTo: 'r',
    expiration: '5000',
    messageId: 'm',
    timestamp: 1700000000,
    type: 't',
    userId: 'someone-else',
    appId: 'a',
    clusterId: undefined,
  }
  const options = sendOptionsOf(properties, { app: 1, CC: ['other'], BCC: ['hidden'] })
  assert.deepEqual(options, {
    persistent: true,
    headers: { app: 1 },
    messageId: 'm',
    correlationId: 'c',
    contentType: 'application/json',
    replyTo: 'r',
    type: 't',
    appId: 'a',
    priority: 3,
    timestamp: 1700000000,
  })
  assert.equal(sendOptionsOf({ ...properties, deliveryMode: 1 }, {}).persistent, false)
})

/** A message stand-in recording what the failure handler settles. */
function fakeMessage(settles: string[]): Message {
  return {
    deliveryTag: 1,
    attempt: 1,
    channelOpen: true,
    headers: {},
    sendSettle: (outcome: string) => settles.push(outcome),
  } as unknown as Message
}

test('the requeue backoff doubles from 100 ms to 5 s while failures follow one another, and a success resets it', () => {
  mock.timers.enable({ apis: ['setTimeout'] })
  try {
    const held: number[] = []
    const failures = new Failures({
      queue: () => 'q',
      ladder: undefined,
      backoff: true,
      logger: () => silent,
      onHeld: () => held.push(failures.held),
      onLadderQueueMissing: () => {},
      onReleased: () => {},
    })
    const waits: number[] = []
    for (let i = 0; i < 8; i++) {
      waits.push(failures.backoff)
      const settles: string[] = []
      failures.failed(fakeMessage(settles), false, 'fail_retry_later', 'debug')
      mock.timers.tick(failures.backoff / 2 - 1)
      assert.deepEqual(settles, [], 'held until its backoff ends')
      mock.timers.tick(5000)
      assert.deepEqual(settles, ['requeue'])
    }
    assert.deepEqual(waits, [100, 200, 400, 800, 1600, 3200, 5000, 5000])
    failures.succeeded()
    assert.equal(failures.backoff, 100)
    assert.deepEqual(held, [1, 1, 1, 1, 1, 1, 1, 1])
    // A final failure is rejected at once; no backoff, nothing held.
    const settles: string[] = []
    failures.failed(fakeMessage(settles), true, 'fail_do_not_retry', 'debug')
    assert.deepEqual(settles, ['reject'])
    // stop(): held messages go back at once.
    const later: string[] = []
    failures.failed(fakeMessage(later), false, 'x', 'debug')
    failures.releaseAll()
    assert.deepEqual(later, ['requeue'])
    assert.equal(failures.held, 0)
  } finally {
    mock.timers.reset()
  }
})

test('requeueBackoff false requeues at once', () => {
  const failures = new Failures({
    queue: () => 'q',
    ladder: undefined,
    backoff: false,
    logger: () => silent,
    onHeld: () => assert.fail('nothing is held'),
    onLadderQueueMissing: () => {},
    onReleased: () => {},
  })
  const settles: string[] = []
  failures.failed(fakeMessage(settles), false, 'x', 'debug')
  assert.deepEqual(settles, ['requeue'])
})

test('repeated failures log one line per second, counting the lines held back; a returned status at debug level only', () => {
  const limiter = new LogLimiter(1000)
  assert.equal(limiter.take(0), 0)
  assert.equal(limiter.take(10), undefined)
  assert.equal(limiter.take(999), undefined)
  assert.equal(limiter.take(1000), 2)
  assert.equal(limiter.take(1500), undefined)
  assert.equal(limiter.take(5000), 1)
  const lines: unknown[] = []
  const logger: Logger = { ...silent, warn: (fields) => lines.push(fields) }
  const failures = new Failures({
    queue: () => 'q',
    ladder: undefined,
    backoff: false,
    logger: () => logger,
    onHeld: () => {},
    onLadderQueueMissing: () => {},
    onReleased: () => {},
  })
  for (let i = 0; i < 1000; i++) failures.failed(fakeMessage([]), false, 'TypeError: x', 'warn')
  assert.equal(lines.length, 1, 'a thousand failures in a moment: one line')
  // A status the task chose is no warning: a debug line (rate-limited too).
  const debug: unknown[] = []
  const quiet = new Failures({
    queue: () => 'q',
    ladder: undefined,
    backoff: false,
    logger: () => ({
      ...silent,
      warn: (fields) => lines.push(fields),
      debug: (fields) => debug.push(fields),
    }),
    onHeld: () => {},
    onLadderQueueMissing: () => {},
    onReleased: () => {},
  })
  for (let i = 0; i < 1000; i++) quiet.failed(fakeMessage([]), false, 'fail_retry_later', 'debug')
  assert.equal(lines.length, 1, 'no warning for a returned status')
  assert.equal(debug.length, 1)
})

const silent: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }
