// The arithmetic behind stats(): outcomes classified by error code, durations as percentiles in ms,
// blocked time that includes the block still going on.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ConnectionCounters,
  ConsumerCounters,
  DurationHistogram,
  PublisherCounters,
} from '../../src/telemetry/stats.js'

test('a publisher counts each outcome by its error code, the rest as failed', () => {
  const c = new PublisherCounters()
  for (const code of [
    undefined,
    undefined,
    'UNROUTABLE',
    'PUBLISH_NACKED',
    'CONFIRM_TIMEOUT',
    'BUFFER_FULL',
    'CONNECTION_CLOSED',
  ]) {
    c.settled(code)
  }
  const s = c.snapshot(3, 4)
  assert.deepEqual(
    { ...s, confirmLatency: undefined },
    {
      sends: 0,
      published: 0,
      confirmed: 2,
      returned: 1,
      nacked: 1,
      timedOut: 1,
      failed: 2,
      republished: 0,
      buffered: 3,
      inFlight: 4,
      confirmLatency: undefined,
    },
  )
})

test('a consumer counts settles by outcome and ladder moves by where they went', () => {
  const c = new ConsumerCounters()
  c.settled('ack')
  c.settled('ack')
  c.settled('reject')
  c.settled('requeue')
  c.moved('delayed')
  c.moved('dead-lettered')
  c.moved('rejected')
  const s = c.snapshot(5, 1, 2)
  assert.equal(s.acked, 2)
  assert.equal(s.rejected, 1)
  assert.equal(s.requeued, 1)
  assert.equal(s.retried, 1)
  assert.equal(s.deadLettered, 1)
  assert.equal(s.staleSettles, 5)
  assert.equal(s.running, 1)
  assert.equal(s.unsettled, 2)
})

test('durations: percentiles in ms at microsecond resolution, zeros when empty', () => {
  const h = new DurationHistogram()
  assert.deepEqual(h.snapshot(), { p50: 0, p90: 0, p99: 0, max: 0, count: 0 })
  for (let i = 1; i <= 100; i++) h.record(i) // 1..100 ms
  const s = h.snapshot()
  assert.equal(s.count, 100)
  // The native histogram keeps 3 significant digits.
  assert.ok(Math.abs(s.p50 - 50) <= 0.1, `p50 ${s.p50}`)
  assert.ok(Math.abs(s.p90 - 90) <= 0.1, `p90 ${s.p90}`)
  assert.ok(Math.abs(s.p99 - 99) <= 0.1, `p99 ${s.p99}`)
  assert.ok(Math.abs(s.max - 100) <= 0.1, `max ${s.max}`)
  const tiny = new DurationHistogram()
  tiny.record(-1) // a clock step: the shortest, not an error
  tiny.record(0)
  assert.deepEqual(tiny.snapshot(), { p50: 0.001, p90: 0.001, p99: 0.001, max: 0.001, count: 2 })
  const seen: number[] = []
  h.onRecord = (ms) => seen.push(ms)
  h.record(0.25)
  assert.deepEqual(seen, [0.25])
})

test('blocked time counts the block going on, and a block ends once', async () => {
  const c = new ConnectionCounters()
  c.block()
  c.block() // no second block while one lasts
  await sleep(30)
  const during = c.snapshot()
  assert.equal(during.blocked, true)
  assert.equal(during.blocks, 1)
  assert.ok(during.blockedMs >= 25, `blockedMs ${during.blockedMs}`)
  c.unblock()
  c.unblock()
  const after = c.snapshot()
  assert.equal(after.blocked, false)
  assert.ok(after.blockedMs >= during.blockedMs, `blockedMs ${after.blockedMs} after the block`)
  await sleep(20)
  assert.equal(c.snapshot().blockedMs, after.blockedMs)
})
