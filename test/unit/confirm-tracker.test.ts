// Confirm tracking without a broker: which sends a confirm covers, and which send a basic.return
// belongs to when several unconfirmed sends look alike.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type PublishOptions,
  plainPublishOptions,
  type ReturnedMessage,
} from '../../src/amqp/channel-session.ts'
import { wireProperties } from '../../src/amqp/wire-properties.ts'
import { ConfirmTracker } from '../../src/publisher/confirm-tracker.ts'
import { PendingSend } from '../../src/publisher/pending-send.ts'

const plain = plainPublishOptions(true, true)

function send(
  tracker: ConfirmTracker,
  routingKey: string,
  body: string,
  options: PublishOptions = plain,
): PendingSend {
  const pending = new PendingSend('ex', routingKey, Buffer.from(body), options, Date.now() + 1000, undefined)
  tracker.add(pending)
  return pending
}

/** A return as amqplib hands it over: the properties decoded from the wire. */
function returned(routingKey: string, body: string, options: PublishOptions = plain): ReturnedMessage {
  const properties = wireProperties(options)
  assert.ok(properties, "amqplib's codec is reachable")
  return {
    exchange: 'ex',
    routingKey,
    replyCode: 312,
    replyText: 'NO_ROUTE',
    properties: properties as ReturnedMessage['properties'],
    body: Buffer.from(body),
  }
}

test('a confirm covers its tag, or with multiple every tag up to it, in publish order', () => {
  const tracker = new ConfirmTracker()
  const sends = ['a', 'b', 'c', 'd'].map((body) => send(tracker, 'k', body))
  assert.deepEqual(tracker.confirm(2, false), [sends[1]])
  assert.deepEqual(tracker.confirm(3, true), [sends[0], sends[2]])
  assert.deepEqual(tracker.confirm(3, true), [])
  assert.equal(tracker.size, 1)
  assert.deepEqual(tracker.takeAll(), [sends[3]])
  // A new channel's tags start at 1 again.
  const next = send(tracker, 'k', 'e')
  assert.deepEqual(tracker.confirm(1, false), [next])
})

test('a return marks the oldest unreturned send with the same exchange, key, body and properties', () => {
  const tracker = new ConfirmTracker()
  const red: PublishOptions = { persistent: true, mandatory: true, headers: { color: 'red' } }
  const blue: PublishOptions = { persistent: true, mandatory: true, headers: { color: 'blue' } }
  const r1 = send(tracker, 'k', 'same', red)
  const b1 = send(tracker, 'k', 'same', blue)
  const r2 = send(tracker, 'k', 'same', red)
  const b2 = send(tracker, 'k', 'same', blue)
  assert.equal(tracker.markReturned(returned('k', 'same', blue)), true)
  assert.equal(tracker.markReturned(returned('k', 'same', blue)), true)
  assert.equal(r1.returned, undefined)
  assert.equal(r2.returned, undefined)
  assert.equal(b1.returned?.code, 'UNROUTABLE')
  assert.equal(b2.returned?.code, 'UNROUTABLE')
  // A third blue return has no blue send left: with no exact match, the oldest send with the same
  // exchange, key and body takes it (reported returned rather than a returned one confirmed).
  assert.equal(tracker.markReturned(returned('k', 'same', blue)), true)
  assert.equal(returnedCode(r1), 'UNROUTABLE')
  assert.equal(r2.returned, undefined)
})

test('byte-identical sends are returned in publish order; the properties pick among sends alike; a different key or body never matches', () => {
  const tracker = new ConfirmTracker()
  const transient = plainPublishOptions(false, true)
  const first = send(tracker, 'k', 'x')
  const second = send(tracker, 'k', 'x')
  const otherKey = send(tracker, 'k2', 'x')
  const otherBody = send(tracker, 'k', 'y')
  const transientZ = send(tracker, 'k', 'z', transient)
  const persistentZ = send(tracker, 'k', 'z')
  assert.equal(tracker.markReturned(returned('k', 'z')), true)
  assert.ok(persistentZ.returned && !transientZ.returned, 'the delivery mode picked the later send')
  assert.equal(tracker.markReturned(returned('k', 'x')), true)
  assert.ok(first.returned && !second.returned)
  assert.equal(tracker.markReturned(returned('k', 'x')), true)
  assert.ok(second.returned)
  assert.equal(tracker.markReturned(returned('k', 'w')), false, 'no send with that body')
  assert.equal(otherKey.returned ?? otherBody.returned, undefined)
})

test('sends past their deadline leave in order', () => {
  const tracker = new ConfirmTracker()
  const old = new PendingSend('ex', 'k', Buffer.from('a'), plain, 100, undefined)
  const young = new PendingSend('ex', 'k', Buffer.from('b'), plain, 200, undefined)
  tracker.add(old)
  tracker.add(young)
  assert.equal(tracker.oldestDeadline, 100)
  assert.deepEqual(tracker.takeExpired(150), [old])
  assert.equal(tracker.oldestDeadline, 200)
})

/** Read through a call: the assertions above narrow `returned` to undefined for TypeScript. */
function returnedCode(pending: PendingSend): string | undefined {
  return pending.returned?.code
}
