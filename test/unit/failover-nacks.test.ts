// Which nacks a publisher sends again on a fresh channel (a cluster failover's artefact) and which
// reach the caller at once.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { plainPublishOptions } from '../../src/amqp/channel-session.ts'
import { UnroutableError } from '../../src/errors.ts'
import { FailoverNacks, failoverWindowMs, replacementDelay } from '../../src/publisher/failover-nacks.ts'
import { PendingSend } from '../../src/publisher/pending-send.ts'

const now = 1_000_000
const send = (exchange: string, routingKey: string, deadline = now + 5_000): PendingSend =>
  new PendingSend(
    exchange,
    routingKey,
    Buffer.from('x'),
    plainPublishOptions(true, true),
    deadline,
    undefined,
  )

test('a channel opened with no change before it: every nack is final', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(undefined, now)
  assert.equal(nacks.sendAgain(send('', 'q'), now), false)
})

test('a channel opened within the window after a change: a nack to a destination it never confirmed is sent again', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(now - failoverWindowMs + 1, now)
  assert.equal(nacks.sendAgain(send('', 'q'), now), true)
  assert.equal(
    nacks.sendAgain(send('events', 'q'), now),
    true,
    'another exchange, same key: another destination',
  )
})

test('a channel opened once the window has passed: nacks are final', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(now - failoverWindowMs, now)
  assert.equal(nacks.sendAgain(send('', 'q'), now), false)
})

test('once the channel confirmed a send to a destination, nacks to it are final; other destinations are still sent again', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(now - 10, now)
  nacks.confirmed(send('', 'q'))
  assert.equal(nacks.sendAgain(send('', 'q'), now), false, 'confirmed before: a real refusal (a full queue)')
  assert.equal(nacks.sendAgain(send('', 'other'), now), true)
  assert.equal(nacks.sendAgain(send('ex', 'q'), now), true)
})

test('a new channel forgets what the previous one confirmed', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(now - 10, now)
  nacks.confirmed(send('', 'q'))
  nacks.channelOpened(now - 10, now)
  assert.equal(nacks.sendAgain(send('', 'q'), now), true)
})

test('a send past its deadline, or one returned unroutable, is not sent again', () => {
  const nacks = new FailoverNacks()
  nacks.channelOpened(now - 10, now)
  assert.equal(nacks.sendAgain(send('', 'q', now), now), false, 'deadline reached')
  const returned = send('', 'q')
  returned.returned = new UnroutableError('', 'q', 312, 'NO_ROUTE')
  assert.equal(nacks.sendAgain(returned, now), false)
})

test('replacement delays: 250 ms doubling, at most 2 s', () => {
  assert.deepEqual([0, 1, 2, 3, 4, 50].map(replacementDelay), [250, 500, 1000, 2000, 2000, 2000])
})
