import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { inspect } from 'node:util'
import { redactUrl, resolveConfig } from '../../src/config.ts'

describe('resolveConfig', () => {
  test('nothing set: RabbitMQ default amqp://guest:guest@localhost:5672/', () => {
    const c = resolveConfig({}, {})
    assert.equal(c.endpoints.length, 1)
    assert.deepEqual(
      { ...c.endpoints[0], display: undefined },
      {
        protocol: 'amqp',
        hostname: 'localhost',
        port: 5672,
        username: 'guest',
        password: 'guest',
        vhost: '/',
        display: undefined,
      },
    )
    assert.equal(c.heartbeat, 60)
    assert.equal(c.tls, undefined)
  })

  test('RABBITMQ_URL with vhost and query parameters', () => {
    const c = resolveConfig(
      {},
      {
        RABBITMQ_URL:
          'amqp://app:p%40ss@rabbit.internal:5673/prod?heartbeat=10&frame_max=8192&channel_max=7&connection_timeout=2500',
      },
    )
    const e = c.endpoints[0]
    assert.equal(e?.hostname, 'rabbit.internal')
    assert.equal(e?.port, 5673)
    assert.equal(e?.username, 'app')
    assert.equal(e?.password, 'p@ss')
    assert.equal(e?.vhost, 'prod')
    assert.equal(c.heartbeat, 10)
    assert.equal(c.frameMax, 8192)
    assert.equal(c.channelMax, 7)
    assert.equal(c.connectionTimeout, 2500)
  })

  test('a percent-encoded vhost %2F is the default vhost', () => {
    assert.equal(resolveConfig({ url: 'amqp://h/%2F' }, {}).endpoints[0]?.vhost, '/')
    assert.equal(resolveConfig({ url: 'amqp://h/' }, {}).endpoints[0]?.vhost, '/')
    assert.equal(resolveConfig({ url: 'amqp://h/a%2Fb' }, {}).endpoints[0]?.vhost, 'a/b')
  })

  test('the original RABBITMQ_HOST/PORT/USERNAME/PASSWORD/VHOST variables', () => {
    const c = resolveConfig(
      {},
      {
        RABBITMQ_HOST: 'mq',
        RABBITMQ_PORT: '5999',
        RABBITMQ_USERNAME: 'u',
        RABBITMQ_PASSWORD: 'pw',
        RABBITMQ_VHOST: 'v',
      },
    )
    const e = c.endpoints[0]
    assert.deepEqual([e?.hostname, e?.port, e?.username, e?.password, e?.vhost], ['mq', 5999, 'u', 'pw', 'v'])
    assert.equal(e?.display, 'amqp://u:***@mq:5999/v')
  })

  test('RABBITMQ_URL wins over RABBITMQ_HOST; options win over both', () => {
    const env = { RABBITMQ_URL: 'amqp://a:b@from-url/', RABBITMQ_HOST: 'from-host' }
    assert.equal(resolveConfig({}, env).endpoints[0]?.hostname, 'from-url')
    assert.equal(resolveConfig({ url: 'amqp://x:y@from-option/' }, env).endpoints[0]?.hostname, 'from-option')
    assert.equal(resolveConfig({ heartbeat: 5 }, { RABBITMQ_URL: 'amqp://h/?heartbeat=30' }).heartbeat, 5)
  })

  test("urlOrder: 'random' by default, or 'given'; anything else is a TypeError", () => {
    assert.equal(resolveConfig({ urls: ['amqp://n1/', 'amqp://n2/'] }, {}).urlOrder, 'random')
    assert.equal(resolveConfig({ urlOrder: 'given' }, {}).urlOrder, 'given')
    assert.throws(() => resolveConfig({ urlOrder: 'first' as never }, {}), TypeError)
  })

  test('urls: a cluster, tried in turn', () => {
    const c = resolveConfig({ urls: ['amqp://a:b@n1/', 'amqp://a:b@n2:5673/'] }, {})
    assert.deepEqual(
      c.endpoints.map((e) => `${e.hostname}:${e.port}`),
      ['n1:5672', 'n2:5673'],
    )
    assert.throws(() => resolveConfig({ urls: [] }, {}), TypeError)
  })

  test('TLS: amqps:// defaults to 5671 with verification on; RABBITMQ_TLS and files from env', () => {
    const a = resolveConfig({ url: 'amqps://u:p@secure/' }, {})
    assert.equal(a.endpoints[0]?.port, 5671)
    assert.deepEqual(a.tls, {})
    const b = resolveConfig(
      {},
      {
        RABBITMQ_TLS: '1',
        RABBITMQ_HOST: 'h',
        RABBITMQ_CA_FILE: '/ca.pem',
        RABBITMQ_CERT_FILE: '/c.pem',
        RABBITMQ_KEY_FILE: '/k.pem',
      },
    )
    assert.equal(b.endpoints[0]?.protocol, 'amqps')
    assert.equal(b.endpoints[0]?.port, 5671)
    assert.equal(b.tls?.rejectUnauthorized, undefined, 'verification stays on unless switched off')
    assert.deepEqual(b.tls, { caFile: '/ca.pem', certFile: '/c.pem', keyFile: '/k.pem' })
    const c = resolveConfig({}, { RABBITMQ_TLS: '1', RABBITMQ_TLS_VERIFY: '0' })
    assert.equal(c.tls?.rejectUnauthorized, false)
    const d = resolveConfig({ url: 'amqp://h:5680/', tls: { rejectUnauthorized: true } }, {})
    assert.equal(d.endpoints[0]?.protocol, 'amqps')
    assert.equal(d.endpoints[0]?.port, 5680, 'an explicit port is kept')
  })

  test('malformed URLs throw a TypeError that never echoes the password', () => {
    for (const url of [
      'amqp://user:s3cr3t@%%%',
      'not a url s3cr3t',
      'http://user:s3cr3t@host/',
      'amqp://user:s3cr3t@host/a/b',
    ]) {
      assert.throws(
        () => resolveConfig({ url }, {}),
        (err: unknown) => {
          assert.ok(err instanceof TypeError, `TypeError for ${url.replace('s3cr3t', '***')}`)
          assert.ok(!err.message.includes('s3cr3t'))
          assert.ok(!inspect(err).includes('s3cr3t'))
          return true
        },
      )
    }
  })

  test('out-of-range numbers throw RangeError naming the option', () => {
    assert.throws(() => resolveConfig({ heartbeat: -1 }, {}), /heartbeat/)
    assert.throws(() => resolveConfig({ frameMax: 10 }, {}), /frameMax/)
    assert.throws(() => resolveConfig({}, { RABBITMQ_PORT: '99999' }), /RABBITMQ_PORT/)
    assert.throws(() => resolveConfig({ url: 'amqp://h/?heartbeat=abc' }, {}), /heartbeat/)
  })

  test('redactUrl hides the password', () => {
    assert.equal(redactUrl('amqp://me:pw@host:1234/v'), 'amqp://me:***@host:1234/v')
    assert.equal(redactUrl('amqp://me:pw@%%%'), '<invalid url>')
  })
})
