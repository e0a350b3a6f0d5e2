import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ChannelSession } from '../../src/amqp/channel-session.ts'
import { AckBatcher, maxHoldMs } from '../../src/consumer/ack-batcher.ts'

type Frame = ['ack' | 'nack', number, boolean, boolean?]

/**
 * A channel that applies frames the way RabbitMQ does: `multiple` settles every outstanding tag up
 * to the given one; a tag that is not outstanding is a channel error (406 "unknown delivery tag").
 */
function fakeSession() {
  const frames: Frame[] = []
  const outstanding = new Set<number>()
  const outcome = new Map<number, 'ack' | 'reject' | 'requeue'>()
  let open = true
  let failing = false
  const settle = (tag: number, multiple: boolean, how: 'ack' | 'reject' | 'requeue') => {
    if (!outstanding.has(tag)) throw new Error(`PRECONDITION_FAILED unknown delivery tag ${tag}`)
    const tags = multiple ? [...outstanding].filter((t) => t <= tag) : [tag]
    for (const t of tags) {
      outstanding.delete(t)
      outcome.set(t, how)
    }
  }
  // A channel session refuses to send (returns false) once its channel is closing.
  const session = {
    ack(deliveryTag: number, multiple: boolean) {
      if (failing) return false
      frames.push(['ack', deliveryTag, multiple])
      settle(deliveryTag, multiple, 'ack')
      return true
    },
    nack(deliveryTag: number, multiple: boolean, requeue: boolean) {
      if (failing) return false
      frames.push(['nack', deliveryTag, multiple, requeue])
      settle(deliveryTag, multiple, requeue ? 'requeue' : 'reject')
      return true
    },
    get open() {
      return open
    },
  } as unknown as ChannelSession
  let dropped = 0
  const batcher = new AckBatcher(session, (n: number) => {
    dropped += n
  })
  return {
    batcher,
    frames,
    outcome,
    outstanding,
    deliver(tag: number) {
      outstanding.add(tag)
      batcher.delivered(tag)
    },
    close() {
      open = false
    },
    fail() {
      failing = true
    },
    get dropped() {
      return dropped
    },
  }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

test('acks decided in one turn below every unsettled delivery leave as one frame with multiple', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 5; t++) s.deliver(t)
  s.batcher.ack(2)
  s.batcher.ack(1)
  s.batcher.ack(3)
  assert.equal(s.frames.length, 0, 'nothing is sent before the end of the turn')
  await turn()
  assert.deepEqual(s.frames, [['ack', 3, true]])
  assert.deepEqual([...s.outstanding], [4, 5])
})

test('acks above an unsettled delivery are sent one by one; multiple never covers the unsettled one', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 4; t++) s.deliver(t)
  s.batcher.ack(2)
  s.batcher.ack(3)
  await turn()
  assert.deepEqual(s.frames, [
    ['ack', 2, false],
    ['ack', 3, false],
  ])
  assert.ok(s.outstanding.has(1))
  s.batcher.ack(1)
  await turn()
  // 2 and 3 are no longer outstanding: the multiple ack of 1 covers only 1.
  assert.deepEqual(s.frames.at(-1), ['ack', 1, true])
  assert.deepEqual([...s.outstanding], [4])
})

test('acks above a delivery settling soon wait for it, then leave with it in one frame', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 5; t++) s.deliver(t)
  s.batcher.settlingSoon(1)
  for (const t of [2, 3, 4]) s.batcher.settle(t, 'ack')
  await turn()
  assert.deepEqual(s.frames, [], 'held behind 1')
  s.batcher.settle(1, 'ack')
  await turn()
  assert.deepEqual(s.frames, [['ack', 4, true]])
  assert.deepEqual([...s.outstanding], [5])
})

test('a delivery settling soon that is rejected: the acks held behind it leave folded past it', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 4; t++) s.deliver(t)
  s.batcher.settlingSoon(1)
  s.batcher.settle(2, 'ack')
  s.batcher.settle(3, 'ack')
  await turn()
  s.batcher.settle(1, 'requeue')
  await turn()
  assert.deepEqual(s.frames, [
    ['nack', 1, false, true],
    ['ack', 3, true],
  ])
  assert.equal(s.outcome.get(1), 'requeue')
  assert.deepEqual([...s.outstanding], [4])
})

test('a hold lasts at most maxHoldMs; flush() and a delivery no longer settling soon end it at once', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 6; t++) s.deliver(t)
  s.batcher.settlingSoon(1)
  s.batcher.settle(2, 'ack')
  await turn()
  assert.deepEqual(s.frames, [])
  await new Promise((resolve) => setTimeout(resolve, maxHoldMs + 20))
  assert.deepEqual(s.frames, [['ack', 2, false]], 'sent alone once the hold ended')
  s.batcher.settle(3, 'ack')
  await turn()
  assert.equal(s.frames.length, 1, 'held again behind 1, with a bound of its own')
  s.batcher.flush()
  assert.deepEqual(s.frames.at(-1), ['ack', 3, false], 'flush() (before a close) sends at once')
  s.batcher.settlingSoon(1, false)
  s.batcher.settle(4, 'ack')
  await turn()
  assert.deepEqual(s.frames.at(-1), ['ack', 4, false], 'no hold behind a delivery no longer settling soon')
  assert.ok(s.outstanding.has(1))
})

test('behind several deliveries settling soon one after another, an ack waits at most maxHoldMs in all', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 5; t++) s.deliver(t)
  for (const t of [1, 2, 3]) s.batcher.settlingSoon(t)
  const decided = performance.now()
  s.batcher.settle(5, 'ack')
  await turn()
  assert.deepEqual(s.frames, [])
  // 1, then 2, settle 30 ms apart: the hold does not start over behind each.
  await new Promise((resolve) => setTimeout(resolve, 30))
  s.batcher.settle(1, 'ack')
  await turn()
  await new Promise((resolve) => setTimeout(resolve, 30))
  assert.ok(
    s.frames.some((f) => f[1] === 5),
    'ack 5 sent once maxHoldMs had passed since it was decided',
  )
  const sentAt = performance.now() - decided
  assert.ok(sentAt < maxHoldMs + 40, `ack 5 left ${Math.round(sentAt)} ms after it was decided`)
  assert.ok(s.outstanding.has(2) && s.outstanding.has(3), 'never folded past an undecided delivery')
})

test('a delivery no longer settling soon releases the acks held behind it at once', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 3; t++) s.deliver(t)
  s.batcher.settlingSoon(1)
  s.batcher.settle(2, 'ack')
  await turn()
  assert.deepEqual(s.frames, [])
  s.batcher.settlingSoon(1, false)
  await turn()
  assert.deepEqual(s.frames, [['ack', 2, false]], 'sent before the hold would have ended')
  s.batcher.settle(1, 'requeue')
  assert.deepEqual(s.frames.at(-1), ['nack', 1, false, true])
})

test('a channel closed during a hold: the held acks are counted as dropped, never sent', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 3; t++) s.deliver(t)
  s.batcher.settlingSoon(1)
  s.batcher.settle(2, 'ack')
  await turn()
  s.close()
  await new Promise((resolve) => setTimeout(resolve, maxHoldMs + 20))
  assert.deepEqual(s.frames, [])
  assert.equal(s.dropped, 1)
})

test('a reject goes out at once and a later multiple ack spans it without touching it', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 4; t++) s.deliver(t)
  s.batcher.reject(2, true)
  assert.deepEqual(s.frames, [['nack', 2, false, true]])
  s.batcher.ack(1)
  s.batcher.ack(3)
  await turn()
  assert.deepEqual(s.frames.at(-1), ['ack', 3, true])
  assert.equal(s.outcome.get(2), 'requeue')
  assert.equal(s.outcome.get(1), 'ack')
  assert.equal(s.outcome.get(3), 'ack')
  assert.deepEqual([...s.outstanding], [4])
})

test('acks for a channel that closed before the end of the turn are dropped and counted', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 3; t++) s.deliver(t)
  s.batcher.ack(1)
  s.batcher.ack(3)
  s.close()
  await turn()
  assert.equal(s.frames.length, 0)
  assert.equal(s.dropped, 2)
})

test('acks refused by a closing channel are counted as dropped', async () => {
  const s = fakeSession()
  for (let t = 1; t <= 3; t++) s.deliver(t)
  s.batcher.ack(1)
  s.fail()
  await turn()
  assert.equal(s.dropped, 1)
  assert.throws(() => s.batcher.reject(2, false), /closing/)
})

test('flush() sends at once (before a graceful close) and is idempotent', () => {
  const s = fakeSession()
  s.deliver(1)
  s.batcher.ack(1)
  s.batcher.flush()
  s.batcher.flush()
  assert.deepEqual(s.frames, [['ack', 1, true]])
  assert.equal(s.batcher.waiting, 0)
})

test('random settle orders, some deliveries settling soon: every delivery settled exactly once, as decided, with fewer frames', async () => {
  let seed = 42
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  for (let round = 0; round < 50; round++) {
    const s = fakeSession()
    const decided = new Map<number, 'ack' | 'reject' | 'requeue'>()
    let next = 1
    const inFlight: number[] = []
    while (next <= 500 || inFlight.length > 0) {
      // Deliver up to a prefetch of 20, then settle a random subset in random order, in random turns.
      while (next <= 500 && inFlight.length < 20) {
        s.deliver(next)
        // Some settle "soon" (a retry ladder's move): acks above them may be held for them.
        if (random() < 0.1) s.batcher.settlingSoon(next)
        inFlight.push(next++)
      }
      const n = 1 + Math.floor(random() * inFlight.length)
      for (let i = 0; i < n; i++) {
        const [tag] = inFlight.splice(Math.floor(random() * inFlight.length), 1) as [number]
        const r = random()
        const how = r < 0.8 ? 'ack' : r < 0.9 ? 'reject' : 'requeue'
        decided.set(tag, how)
        if (how === 'ack') s.batcher.ack(tag)
        else s.batcher.reject(tag, how === 'requeue')
      }
      if (random() < 0.7) await turn()
    }
    await turn()
    await new Promise((resolve) => setTimeout(resolve, maxHoldMs + 10))
    assert.equal(s.outstanding.size, 0, 'every delivery settled')
    assert.deepEqual(s.outcome, decided, 'each with the outcome its task decided')
    assert.equal(s.dropped, 0)
    assert.ok(s.frames.length < 500, `${s.frames.length} frames for 500 settles`)
  }
})
