// Failures no retry fixes end start() at once with a typed code, after one attempt: an unknown
// vhost, an unreadable TLS file, a broker certificate that does not verify. A client certificate
// without its key is refused at construction, and switching verification off is logged once.
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { createServer as createTlsServer } from 'node:tls'
import { Connection, type LapinError, Publisher } from 'lapinmq'
import { closeAdmin, rabbitmqctl, waitFor } from '../helpers/broker.ts'

after(closeAdmin)

const dir = mkdtempSync(join(tmpdir(), 'lapinmq-tls-'))
after(() => rmSync(dir, { recursive: true, force: true }))

/** Starts `server` on a free local port and counts the TCP connections it gets. */
async function listen(server: Server): Promise<{ port: number; connections: () => number }> {
  let connections = 0
  server.on('connection', () => connections++)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { port: (server.address() as { port: number }).port, connections: () => connections }
}

async function failure(start: Promise<void>): Promise<{ code: string; ms: number; err: LapinError }> {
  const started = Date.now()
  const err = (await start.then(
    () => assert.fail('start() succeeded'),
    (e: unknown) => e,
  )) as LapinError
  return { code: err.code, ms: Date.now() - started, err }
}

test('an unknown vhost: start() rejects NOT_ALLOWED in under 1 s, never retried', async () => {
  const connection = new Connection({ url: 'amqp://guest:guest@127.0.0.1:5672/no-such-vhost' })
  const retries: unknown[] = []
  connection.on('reconnecting', (r) => retries.push(r))
  const publisher = new Publisher({ kind: 'sync', connection })
  try {
    const { code, ms, err } = await failure(publisher.start())
    assert.equal(code, 'NOT_ALLOWED')
    assert.equal(err.replyCode, 530)
    assert.match(err.message, /no-such-vhost/)
    assert.ok(ms < 1000, `${ms} ms`)
    assert.equal(retries.length, 0)
  } finally {
    await publisher.stop()
    await connection.close()
  }
})

test('a CA file that cannot be read: start() rejects TLS_CONFIG_INVALID in under 1 s, never retried', async () => {
  const server = await listen(createServer((socket) => socket.destroy()))
  const connection = new Connection({
    url: `amqps://guest:guest@127.0.0.1:${server.port}/`,
    tls: { caFile: join(dir, 'missing-ca.pem') },
  })
  try {
    const { code, ms, err } = await failure(connection.connect())
    assert.equal(code, 'TLS_CONFIG_INVALID')
    assert.match(err.message, /caFile '.*missing-ca\.pem': ENOENT/)
    assert.ok(ms < 1000, `${ms} ms`)
    assert.equal(server.connections(), 0, 'nothing is sent before the files are read')
  } finally {
    await connection.close()
  }
})

test('a broker certificate that does not verify: start() rejects TLS_VERIFY_FAILED after one attempt', async () => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      '/CN=not-the-broker',
      '-days',
      '1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ],
    { stdio: 'ignore' },
  )
  const tlsServer = createTlsServer(
    { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
    (socket) => socket.destroy(),
  )
  tlsServer.on('tlsClientError', () => {})
  const server = await listen(tlsServer)
  const connection = new Connection({ url: `amqps://guest:guest@127.0.0.1:${server.port}/` })
  try {
    const { code, ms, err } = await failure(connection.connect())
    assert.equal(code, 'TLS_VERIFY_FAILED')
    assert.match(err.message, /DEPTH_ZERO_SELF_SIGNED_CERT/)
    assert.ok(ms < 1000, `${ms} ms`)
    assert.equal(server.connections(), 1)
  } finally {
    await connection.close()
  }
})

test('a client certificate without its key (or the reverse) is refused at construction', () => {
  assert.throws(
    () => new Connection({ url: 'amqps://localhost/', tls: { certFile: '/x/cert.pem' } }),
    /needs its key/,
  )
  assert.throws(
    () => new Connection({ url: 'amqps://localhost/', tls: { key: 'PEM' } }),
    /needs its certificate/,
  )
  const saved = { ...process.env }
  try {
    process.env.RABBITMQ_URL = 'amqps://localhost/'
    process.env.RABBITMQ_CERT_FILE = '/x/cert.pem'
    assert.throws(() => new Connection(), /needs its key/)
  } finally {
    process.env = saved
  }
})

test('switching verification off logs one warning', async () => {
  const warnings: string[] = []
  const noop = () => {}
  const logger = {
    debug: noop,
    info: noop,
    error: noop,
    warn: (_o: object, msg?: string) => warnings.push(msg ?? ''),
  }
  const connection = new Connection({
    url: 'amqps://localhost:1/',
    tls: { rejectUnauthorized: false },
    logger,
  })
  await connection.close()
  assert.equal(warnings.filter((w) => /verification is off/.test(w)).length, 1)
  new Connection({ url: 'amqps://localhost:1/', logger })
  assert.equal(warnings.filter((w) => /verification is off/.test(w)).length, 1)
})

test('while recovering, a vhost refused for a moment (its connection limit) is retried, not given up on', async () => {
  const vhost = `lapinmq-test-limit-${process.pid}`
  await rabbitmqctl('add_vhost', vhost)
  try {
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*')
    const connection = new Connection({
      url: `amqp://guest:guest@127.0.0.1:5672/${vhost}`,
      recovery: { initialDelay: 100, maxDelay: 300 },
    })
    const refusals: string[] = []
    connection.on('reconnecting', ({ error }) => refusals.push(error.code))
    const errors: LapinError[] = []
    connection.on('error', (e) => errors.push(e))
    const publisher = new Publisher({ kind: 'sync', connection })
    try {
      await publisher.start()
      await rabbitmqctl('set_vhost_limits', '-p', vhost, '{"max-connections": 0}')
      await rabbitmqctl('close_all_connections', '-p', vhost, 'limit test')
      await waitFor(
        () => refusals.filter((c) => c === 'NOT_ALLOWED').length >= 2,
        10_000,
        'two refused attempts',
      )
      await rabbitmqctl('clear_vhost_limits', '-p', vhost)
      await waitFor(() => connection.state === 'open', 10_000, 'the connection to recover')
      await assert.rejects(publisher.sendMessageToQueue('no-such-queue', 'x'), { code: 'UNROUTABLE' })
      assert.deepEqual(errors, [])
    } finally {
      await publisher.stop()
      await connection.close()
    }
  } finally {
    await rabbitmqctl('delete_vhost', vhost)
  }
})
