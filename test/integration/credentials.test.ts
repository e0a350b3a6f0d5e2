// A wrong password fails start() with ACCESS_REFUSED, and the password shows up nowhere: not in the
// error (message, stack, cause, inspect), not in the connection or publisher as inspected or
// serialised, not in any log line.
import assert from 'node:assert/strict'
import { after, test } from 'node:test'
import { inspect } from 'node:util'
import { Connection, LapinError, Publisher, redactUrl } from 'lapinmq'
import { closeAdmin } from '../helpers/broker.ts'

after(closeAdmin)

const password = 'wrong-s3cret'

/** A logger that keeps every line, serialised, as a log shipper would. */
function capturingLogger() {
  const lines: string[] = []
  const record = (level: string) => (obj: object, msg?: string) => {
    lines.push(JSON.stringify({ level, obj, msg }, (_k, v: unknown) => (v instanceof Error ? inspect(v) : v)))
  }
  return {
    lines,
    logger: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
  }
}

function assertNoPassword(what: string, text: string): void {
  assert.ok(!text.includes(password), `${what} shows the password: ${text}`)
  assert.ok(!text.includes(encodeURIComponent(password)), `${what} shows the encoded password: ${text}`)
}

test('a wrong password fails start() with ACCESS_REFUSED and is never shown', async () => {
  const { lines, logger } = capturingLogger()
  const connection = new Connection({ url: `amqp://guest:${password}@127.0.0.1:5672/`, logger })
  const events: unknown[] = []
  connection.on('error', (e) => events.push(e))
  connection.on('disconnected', (e) => events.push(e))
  const publisher = new Publisher({ kind: 'sync', connection, logger })
  try {
    assert.equal(connection.url, 'amqp://guest:***@127.0.0.1:5672/%2F')
    const err = await publisher.start().then(
      () => assert.fail('start() succeeded with a wrong password'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof LapinError, `expected a LapinError, got ${String(err)}`)
    assert.equal(err.code, 'ACCESS_REFUSED')
    assert.equal(err.replyCode, 403)
    assert.match(
      err.message,
      /amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/,
      'the error should say where it connected',
    )

    // A send on the failed publisher rejects too, and does not leak either.
    const sendError = await publisher.sendMessageToQueue('q', 'x').then(
      () => assert.fail('a send succeeded with a wrong password'),
      (e: unknown) => e,
    )
    assert.ok(sendError instanceof LapinError)

    for (const e of [err, sendError, ...events]) {
      const error = e as Error
      assertNoPassword('the error message', String(error.message))
      assertNoPassword('the error stack', String(error.stack))
      assertNoPassword('the inspected error', inspect(error, { depth: 10, showHidden: true }))
      assertNoPassword('the serialised error', JSON.stringify(error))
      assertNoPassword('the cause', inspect(error.cause, { depth: 10 }))
    }
    assertNoPassword('util.inspect(connection)', inspect(connection, { depth: 10 }))
    assertNoPassword('JSON.stringify(connection)', JSON.stringify(connection))
    assertNoPassword('String(connection)', String(connection))
    assertNoPassword('util.inspect(publisher)', inspect(publisher, { depth: 10 }))
    assertNoPassword('connection.url', connection.url)
    assert.ok(lines.length > 0, 'the logger heard nothing about the failed connection')
    for (const line of lines) assertNoPassword('a log line', line)
    assert.ok(
      lines.some((l) => l.includes('ACCESS_REFUSED')),
      `no log line says why: ${lines.join('\n')}`,
    )
  } finally {
    await publisher.stop()
    await connection.close()
  }
})

test('URLs are shown redacted, the user and vhost kept', () => {
  assert.equal(
    new Connection({ url: `amqp://guest:${password}@127.0.0.1:5672/` }).url,
    'amqp://guest:***@127.0.0.1:5672/%2F',
  )
  assert.equal(
    new Connection({ url: `amqps://app:${password}@rabbit.example:5671/prod` }).url,
    'amqps://app:***@rabbit.example:5671/prod',
  )
  assert.equal(redactUrl(`amqp://app:${password}@localhost/`), 'amqp://app:***@localhost:5672/%2F')
  assert.equal(redactUrl(`amqp://app:${password}@%%%`), '<invalid url>')
  const connection = new Connection({ urls: [`amqp://a:${password}@h1/`, `amqp://b:${password}@h2/`] })
  assertNoPassword('inspect', inspect(connection))
  assertNoPassword('JSON', JSON.stringify(connection))
})

test('a refused TCP connection fails start() with a typed error that does not show the password', async () => {
  const { lines, logger } = capturingLogger()
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  const connection = new Connection({ url: `amqp://guest:${password}@127.0.0.1:1/`, logger })
  const publisher = new Publisher({ kind: 'async', connection })
  try {
    const err = await publisher.start().then(
      () => assert.fail('start() succeeded against a closed port'),
      (e: unknown) => e,
    )
    assert.ok(err instanceof LapinError, String(err))
    assert.equal(err.code, 'CONNECTION_FAILED')
    assert.match(err.message, /ECONNREFUSED/)
    assertNoPassword('the error', inspect(err, { depth: 10, showHidden: true }))
    for (const line of lines) assertNoPassword('a log line', line)
  } finally {
    await publisher.stop()
    await connection.close()
  }
})
