// The silent-broker watch: a connection with no byte read for 1.5 heartbeats raises amqplib's own
// heartbeat timeout; one that hears the broker every half heartbeat (RabbitMQ's pace) never does.
import assert from 'node:assert/strict'
import { EventEmitter } from 'node:events'
import { afterEach, beforeEach, mock, test } from 'node:test'
import { watchSilence } from '../../src/amqp/silence.ts'

beforeEach(() => mock.timers.enable({ apis: ['setInterval'] }))
afterEach(() => mock.timers.reset())

/** What the watch reads of amqplib's connection, and how often its heart timed out. */
function fakeConnection(): {
  connection: { recvSinceLastCheck: boolean; heartbeater: EventEmitter }
  timeouts: () => number
} {
  const heartbeater = new EventEmitter()
  let timeouts = 0
  heartbeater.on('timeout', () => timeouts++)
  return { connection: { recvSinceLastCheck: false, heartbeater }, timeouts: () => timeouts }
}

test('silent from the last byte: the heartbeat timeout is raised once, between 1.5 and 1.75 heartbeats after it', () => {
  const { connection, timeouts } = fakeConnection()
  const stop = watchSilence(connection, 4)
  assert.ok(stop)
  mock.timers.tick(500)
  connection.recvSinceLastCheck = true // the last chunk, at 0.5 s
  mock.timers.tick(6_499)
  assert.equal(timeouts(), 0, 'not before 1.5 heartbeats (6 s) after the last byte')
  mock.timers.tick(1_000)
  assert.equal(timeouts(), 1, 'by 1.75 heartbeats (7 s) after it')
  mock.timers.tick(60_000)
  assert.equal(timeouts(), 1, 'raised once')
})

test('a chunk every half heartbeat keeps it alive, even with amqplib clearing the flag in between', () => {
  const { connection, timeouts } = fakeConnection()
  const stop = watchSilence(connection, 4)
  for (let i = 0; i < 100; i++) {
    connection.recvSinceLastCheck = true // amqplib, at each chunk read
    mock.timers.tick(1_000)
    connection.recvSinceLastCheck = false // amqplib's own check
    mock.timers.tick(1_000)
  }
  assert.equal(timeouts(), 0)
  assert.equal(connection.recvSinceLastCheck, false, 'the flag still reads as amqplib wrote it')
  stop?.()
  mock.timers.tick(60_000)
  assert.equal(timeouts(), 0, 'stopped: no timeout after')
})

test('no heartbeat, or an amqplib without the flag or the heart: nothing is watched', () => {
  assert.equal(watchSilence(fakeConnection().connection, 0), undefined)
  assert.equal(watchSilence({ heartbeater: new EventEmitter() }, 4), undefined)
  assert.equal(watchSilence({ recvSinceLastCheck: false, heartbeater: null }, 4), undefined)
  assert.equal(watchSilence(undefined, 4), undefined)
})

test('heard.at is the time of the last chunk read: a health check reads the silence from it', () => {
  const { connection } = fakeConnection()
  const heard = { at: -1 }
  const stop = watchSilence(connection, 4, heard)
  assert.ok(heard.at > 0, 'heard at the start of the watch')
  heard.at = -1
  connection.recvSinceLastCheck = false // amqplib's own check: not a chunk
  assert.equal(heard.at, -1)
  const before = performance.now()
  connection.recvSinceLastCheck = true // a chunk read
  assert.ok(heard.at >= before && heard.at <= performance.now())
  stop?.()
})
