// `lapinmq publish`, run as a user runs it: messages from stdin lines, a body argument with headers
// and properties, an unroutable publish that exits non-zero and names the returned messages, and
// clear errors (exit codes from LapinError.code, never a password).
import assert from 'node:assert/strict'
import { after, describe, test } from 'node:test'
import {
  bindQueue,
  brokerUrl,
  closeAdmin,
  declareExchange,
  declareQueue,
  deleteExchange,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'
import { isPlain, runCli } from '../helpers/cli.ts'

const queues: string[] = []
const exchanges: string[] = []

async function newQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  return queue
}

describe('lapinmq publish', () => {
  after(async () => {
    for (const queue of queues) await deleteQueue(queue)
    for (const exchange of exchanges) await deleteExchange(exchange)
    await closeAdmin()
  })

  for (const kind of ['async', 'sync'] as const) {
    test(`--lines from stdin, --kind ${kind}: every line is one confirmed message, in order`, async () => {
      const queue = await newQueue(`cli-publish-${kind}`)
      const lines = Array.from({ length: 500 }, (_, i) => `line ${i}`)
      // A blank line and CRLF endings: skipped and trimmed.
      const input = `${lines.slice(0, 250).join('\r\n')}\r\n\n${lines.slice(250).join('\n')}\n`
      const run = await runCli(['publish', queue, '--lines', '--kind', kind, '--message-id', 'id-{n}'], {
        input,
      })
      assert.equal(run.code, 0, run.stderr)
      assert.match(run.stderr, new RegExp(`published 500 messages to queue '${queue}': 500 confirmed\\n`))
      const got = await drainQueue(queue)
      assert.deepEqual(
        got.map((m) => m.content.toString()),
        lines,
      )
      assert.deepEqual(
        got.slice(0, 2).map((m) => m.properties.messageId),
        ['id-1', 'id-2'],
      )
      assert.ok(isPlain(run.stdout + run.stderr), 'no control characters when not a terminal')
    })
  }

  test('--lines sends each line as its exact bytes, even when they are not UTF-8', async () => {
    const queue = await newQueue('cli-publish-bytes')
    const lines = [
      Buffer.from([0x61, 0xff, 0xfe, 0x62]), // not UTF-8
      Buffer.from([0xe2, 0x82]), // a character cut in two
      Buffer.from('caf\u00e9 \u2603'),
      Buffer.from([0x00, 0x80, 0x0d, 0x41]), // a carriage return inside a line stays
    ]
    const input = Buffer.concat([
      lines[0] as Buffer,
      Buffer.from('\r\n\n'),
      lines[1] as Buffer,
      Buffer.from('\n'),
      lines[2] as Buffer,
      Buffer.from('\r\n'),
      lines[3] as Buffer, // no newline at the end
    ])
    const run = await runCli(['publish', queue, '--lines'], { input })
    assert.equal(run.code, 0, run.stderr)
    const got = await drainQueue(queue)
    assert.deepEqual(
      got.map((m) => m.content),
      lines,
    )
  })

  test('a body argument with headers and properties; --quiet prints nothing', async () => {
    const queue = await newQueue('cli-publish-props')
    const run = await runCli([
      'publish',
      queue,
      '{"order": 1}',
      '-H',
      'tenant=a',
      '--header',
      'trace=x=y',
      '--content-type',
      'application/json',
      '--correlation-id',
      'c-1',
      '--priority',
      '3',
      '--expiration',
      '60000',
      '--transient',
      '--quiet',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout + run.stderr, '')
    const [message] = await drainQueue(queue)
    assert.ok(message)
    assert.equal(message.content.toString(), '{"order": 1}')
    assert.deepEqual(message.properties.headers, { tenant: 'a', trace: 'x=y' })
    assert.equal(message.properties.contentType, 'application/json')
    assert.equal(message.properties.correlationId, 'c-1')
    assert.equal(message.properties.priority, 3)
    assert.equal(message.properties.expiration, '60000')
    assert.equal(message.properties.deliveryMode, 1)
  })

  test('--json-lines: body, typed headers, properties and flags per line; a non-string body is sent as JSON', async () => {
    const queue = await newQueue('cli-publish-json-lines')
    const input = [
      JSON.stringify({
        body: 'plain text',
        headers: { attempt: 2, vip: true, ratio: 0.5, tags: ['a'], note: 'x' },
      }),
      '',
      JSON.stringify({ body: { id: 7, name: 'caf\u00e9' }, properties: { messageId: 'm-2', priority: 4 } }),
      JSON.stringify({ body: 'own type', properties: { contentType: 'text/csv', persistent: false } }),
    ].join('\n')
    const run = await runCli(['publish', queue, '--json-lines', '-H', 'source=cli', '-H', 'note=flag'], {
      input,
    })
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, new RegExp(`published 3 messages to queue '${queue}': 3 confirmed\\n`))
    const [first, second, third] = await drainQueue(queue)
    assert.ok(first && second && third)
    assert.equal(first.content.toString(), 'plain text')
    assert.equal(first.properties.contentType, undefined, 'a string body is sent as it is')
    assert.deepEqual(first.properties.headers, {
      source: 'cli',
      note: 'x', // the line's header wins over the flag's
      attempt: 2,
      vip: true,
      ratio: 0.5,
      tags: ['a'],
    })
    assert.deepEqual(JSON.parse(second.content.toString()), { id: 7, name: 'caf\u00e9' })
    assert.equal(second.properties.contentType, 'application/json')
    assert.equal(second.properties.messageId, 'm-2')
    assert.equal(second.properties.priority, 4)
    assert.deepEqual(second.properties.headers, { source: 'cli', note: 'flag' })
    assert.equal(third.properties.contentType, 'text/csv')
    assert.equal(third.properties.deliveryMode, 1)
  })

  test('--json-lines: a routingKey per line with --exchange', async () => {
    const exchange = uniqueName('cli-json-lines-x')
    exchanges.push(exchange)
    await declareExchange(exchange, 'direct')
    const eu = await newQueue('cli-json-lines-eu')
    const us = await newQueue('cli-json-lines-us')
    await bindQueue(eu, exchange, 'eu')
    await bindQueue(us, exchange, 'us')
    const input = ['eu', 'us', 'eu']
      .map((key, i) => JSON.stringify({ body: `m${i}`, routingKey: key }))
      .join('\n')
    const run = await runCli(['publish', '--exchange', exchange, '--routing-key', 'us', '--json-lines'], {
      input,
    })
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(
      (await drainQueue(eu)).map((m) => m.content.toString()),
      ['m0', 'm2'],
    )
    assert.deepEqual(
      (await drainQueue(us)).map((m) => m.content.toString()),
      ['m1'],
    )
  })

  test('--json-lines: a bad line stops the run with exit 2 naming the line, never its body; lines before it are confirmed', async () => {
    const queue = await newQueue('cli-publish-json-bad')
    const cases: [string, RegExp][] = [
      ['{"body": "secret-1", ', /line 2: not valid JSON/],
      ['["secret-2"]', /line 2: not a JSON object/],
      ['{"body": "secret-3", "header": {}}', /line 2: unknown field 'header'/],
      ['{"headers": {"a": 1}}', /line 2: no 'body'/],
      ['{"body": "secret-5", "properties": {"expiry": 5}}', /line 2: unknown property 'expiry'/],
      ['{"body": "secret-6", "properties": {"priority": 300}}', /line 2: .*priority/],
      ['{"body": "secret-7", "routingKey": "k"}', /line 2: a 'routingKey' goes with --exchange/],
    ]
    for (const [bad, message] of cases) {
      const input = `${JSON.stringify({ body: 'good' })}\n${bad}\n${JSON.stringify({ body: 'never sent' })}\n`
      const run = await runCli(['publish', queue, '--json-lines', '--kind', 'sync'], { input })
      assert.equal(run.code, 2, `${bad}: ${run.stderr}`)
      assert.match(run.stderr, message)
      assert.doesNotMatch(run.stderr, /secret/, 'the body never reaches the error')
      assert.deepEqual(
        (await drainQueue(queue)).map((m) => m.content.toString()),
        ['good'],
        bad,
      )
    }
    const both = await runCli(['publish', queue, '--json-lines', '--lines'], { input: '{}' })
    assert.equal(both.code, 2)
    assert.match(both.stderr, /--lines or --json-lines, not both/)
  })

  test('unroutable: exits 3 and says which messages were returned; routable ones are confirmed', async () => {
    const exchange = uniqueName('cli-publish-direct')
    exchanges.push(exchange)
    await declareExchange(exchange, 'direct')
    const queue = await newQueue('cli-publish-bound')
    // Bind through a throwaway amqplib channel: the CLI has no bind step of its own.
    const amqplib = await import('amqplib')
    const conn = await amqplib.connect(brokerUrl)
    const ch = await conn.createChannel()
    await ch.bindQueue(queue, exchange, 'ok')
    await conn.close()

    const okRun = await runCli(['publish', '--exchange', exchange, '--routing-key', 'ok', 'fine'])
    assert.equal(okRun.code, 0, okRun.stderr)
    assert.equal(await queueCount(queue), 1)

    const run = await runCli(
      ['publish', '--exchange', exchange, '--routing-key', 'nowhere', '--lines', '--message-id', 'm-{n}'],
      { input: 'a\nb\nc\n' },
    )
    assert.equal(run.code, 3, run.stderr)
    assert.match(
      run.stderr,
      /published 3 messages to exchange '.*' with routing key 'nowhere': 0 confirmed, 3 returned/,
    )
    for (const n of [1, 2, 3])
      assert.match(run.stderr, new RegExp(`message ${n} id 'm-${n}' returned: NO_ROUTE`))
    assert.match(run.stderr, /no queue is bound to exchange/)
    assert.equal(await queueCount(queue), 1, 'nothing more arrived')
  })

  test('to a queue that does not exist: exit 3, and the hint says so', async () => {
    const queue = uniqueName('cli-publish-missing')
    const run = await runCli(['publish', queue, 'lost?'])
    assert.equal(run.code, 3)
    assert.match(run.stderr, /message 1 returned: NO_ROUTE/)
    assert.match(run.stderr, new RegExp(`no queue '${queue}' exists`))
    assert.ok(!run.stderr.includes('lost?'), 'the body is never printed in an error')
  })

  test('a missing exchange: exit 6 (NOT_FOUND); a sync publish stops after one attempt', async () => {
    const run = await runCli(
      ['publish', '--exchange', uniqueName('cli-no-exchange'), '--lines', '--kind', 'sync'],
      {
        input: 'a\nb\nc\n',
      },
    )
    assert.equal(run.code, 6, run.stderr)
    assert.match(run.stderr, /lapinmq: stopped publishing: NOT_FOUND: /)
    assert.match(run.stderr, /published 1 message .*: 0 confirmed, 1 failed/)
  })

  test('wrong password: exit 7 (ACCESS_REFUSED), the password never printed', async () => {
    const url = new URL(brokerUrl)
    url.password = 's3cret-pw'
    const run = await runCli(['publish', 'any', 'x', '--url', url.href])
    assert.equal(run.code, 7, run.stderr)
    assert.match(run.stderr, /^lapinmq: ACCESS_REFUSED: .*:\*\*\*@/m)
    assert.ok(!(run.stdout + run.stderr).includes('s3cret-pw'))
  })

  test('nothing listening: exit 8 (CONNECTION_FAILED), from RABBITMQ_URL, password redacted', async () => {
    const run = await runCli(['publish', 'any', 'x'], {
      env: { RABBITMQ_URL: 'amqp://lapin:s3cret-pw@127.0.0.1:1/' },
    })
    assert.equal(run.code, 8, run.stderr)
    assert.match(
      run.stderr,
      /^lapinmq: CONNECTION_FAILED: could not connect to amqp:\/\/lapin:\*\*\*@127\.0\.0\.1:1/m,
    )
    assert.ok(!run.stderr.includes('s3cret-pw'))
  })

  test('usage errors exit 2 and say what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['publish'], /give a queue, or --exchange/],
      [['publish', 'q', 'x', '--kind', 'fast'], /--kind must be 'sync' or 'async', got 'fast'/],
      [['publish', 'q', 'x', '--priority', '300'], /must be an integer between 0 and 255/],
      [['publish', 'q', 'x', '-H', 'novalue'], /a header is key=value/],
      [['publish', 'q', 'x', '--nope'], /unknown option '--nope'/],
      [['frobnicate'], /unknown command 'frobnicate'/],
      [['consume', 'q', '--max-attempts', '3'], /--max-attempts .*give --exec too/],
    ]
    for (const [args, message] of cases) {
      const run = await runCli(args)
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, message)
    }
  })

  test('--help on every command: exit 0, usage and an example', async () => {
    for (const command of ['publish', 'consume', 'pipe', 'demo']) {
      const run = await runCli([command, '--help'])
      assert.equal(run.code, 0)
      assert.match(run.stdout, new RegExp(`^Usage: lapinmq ${command} `))
      assert.match(run.stdout, /Examples:\n {2}lapinmq /)
    }
    const top = await runCli(['--help'])
    assert.equal(top.code, 0)
    for (const command of ['publish', 'consume', 'pipe', 'demo'])
      assert.match(top.stdout, new RegExp(`\\n {2}${command} `))
  })
})
