import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import {
  ConfirmTimeoutError,
  ConnectionClosedError,
  LapinError,
  PublishNackedError,
  redactText,
  toLapinError,
  UnroutableError,
} from '../../src/errors.ts'

describe('errors', () => {
  test('every subclass is a LapinError with a stable code', () => {
    const cases: [LapinError, string][] = [
      [new UnroutableError('ex', 'rk', 312, 'NO_ROUTE'), 'UNROUTABLE'],
      [new PublishNackedError('ex', 'rk'), 'PUBLISH_NACKED'],
      [new ConfirmTimeoutError(100, true), 'CONFIRM_TIMEOUT'],
      [new ConnectionClosedError('gone'), 'CONNECTION_CLOSED'],
    ]
    for (const [err, code] of cases) {
      assert.ok(err instanceof LapinError)
      assert.ok(err instanceof Error)
      assert.equal(err.code, code)
      assert.equal(err.name, err.constructor.name)
    }
    assert.equal(new UnroutableError('ex', 'rk', 312, 'NO_ROUTE').replyCode, 312)
  })

  test('toLapinError maps AMQP reply codes, handshake refusals and socket errors', () => {
    const channel404 = Object.assign(
      new Error('Channel closed by server: 404 (NOT-FOUND) with message "NOT_FOUND - no exchange \'x\'"'),
      { code: 404 },
    )
    const e404 = toLapinError(channel404, 'publish')
    assert.equal(e404.code, 'NOT_FOUND')
    assert.equal(e404.replyCode, 404)
    assert.equal(e404.cause, channel404)

    const refused = new Error(
      'Handshake terminated by server: 403 (ACCESS-REFUSED) with message "ACCESS_REFUSED - Login was refused"',
    )
    assert.equal(toLapinError(refused, 'connect').code, 'ACCESS_REFUSED')

    const socket = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    const s = toLapinError(socket, 'connect')
    assert.equal(s.code, 'CONNECTION_FAILED')
    assert.match(s.message, /ECONNREFUSED/)

    const same = new ConnectionClosedError('x')
    assert.equal(toLapinError(same, 'ctx'), same)
  })

  test('redactText removes URL passwords', () => {
    assert.equal(
      redactText('failed amqp://u:secret@h:5672/ and amqps://a:b@c/'),
      'failed amqp://u:***@h:5672/ and amqps://a:***@c/',
    )
    assert.ok(!toLapinError(new Error('bad amqp://u:secret@h/'), 'x').message.includes('secret'))
  })
})
