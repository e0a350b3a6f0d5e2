// `lapinmq call`, run as a user runs it, against a server that is a lapinmq Consumer in this process
// answering with message.reply / replyJson: the reply's exact bytes on stdout, the request's
// replyTo, correlation id and flags as the server sees them, --json, and an exit code per outcome
// (no reply by --timeout, no queue, a missing exchange, no broker, Ctrl-C).
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { after, describe, test } from 'node:test'
import { Consumer, type Message, MessageStatus } from 'lapinmq'
import {
  bindQueue,
  closeAdmin,
  declareExchange,
  deleteExchange,
  deleteQueue,
  uniqueName,
} from '../helpers/broker.ts'
import { type CliChild, ctrlC, isPlain, killCli, runCliWithin, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []
const exchanges: string[] = []
const servers: Consumer[] = []
const children: CliChild[] = []

/** A server on a queue of its own whose task is `task`. */
async function serve(prefix: string, task: (message: Message) => Promise<MessageStatus>): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  const server = new Consumer({ queueName: queue, concurrency: 5, taskFunction: task })
  servers.push(server)
  await server.start()
  return queue
}

/** A server that takes requests and never answers them (acked at the end of the test). */
async function silentServer(prefix: string): Promise<{ queue: string; held: Message[] }> {
  const held: Message[] = []
  const queue = await serve(prefix, async (message) => {
    held.push(message)
    return MessageStatus.HANDLED_VIA_CALLBACK
  })
  return { queue, held }
}

describe('lapinmq call', () => {
  after(async () => {
    for (const child of children) killCli(child)
    for (const server of servers) await server.stop()
    for (const queue of queues) await deleteQueue(queue)
    for (const exchange of exchanges) await deleteExchange(exchange)
    await closeAdmin()
  })

  test('the reply is printed as its exact bytes; the request carries replyTo, a correlation id and the flags', async () => {
    const requests: Message[] = []
    const queue = await serve('cli-call-bytes', async (message) => {
      requests.push(message)
      // Not UTF-8, an escape sequence, a NUL, and no newline at the end: printed as they are.
      await message.reply(
        Buffer.concat([Buffer.from([0x00, 0xff, 0x1b, 0x5b, 0x33, 0x31, 0x6d]), message.body]),
      )
      return MessageStatus.SUCCESS
    })
    const request = Buffer.from([0xfe, 0x0a, 0x80, 0x41])
    const run = await runCliWithin(
      20_000,
      [
        'call',
        queue,
        '-H',
        'tenant=a',
        '--content-type',
        'application/octet-stream',
        '--message-id',
        'm-1',
        '--type',
        'quote',
        '--app-id',
        'cli-test',
        '--priority',
        '3',
        '--timeout',
        '10s',
      ],
      { input: request },
    )
    assert.equal(run.code, 0, run.stderr)
    assert.deepEqual(
      run.stdoutBytes,
      Buffer.from([0x00, 0xff, 0x1b, 0x5b, 0x33, 0x31, 0x6d, 0xfe, 0x0a, 0x80, 0x41]),
    )
    assert.match(run.stderr, new RegExp(`^reply from queue '${queue}' in [\\d.]+ m?s: 11 bytes\\n$`))
    assert.ok(isPlain(run.stderr), 'no control characters on stderr')
    const [got] = requests
    assert.ok(got)
    assert.deepEqual(got.body, request)
    // What the server's reply needs, without a flag for it: it never meets NO_REPLY_TO.
    assert.match(String(got.properties.replyTo), /^amq\.rabbitmq\.reply-to\./)
    assert.equal(typeof got.properties.correlationId, 'string')
    assert.deepEqual(got.headers, { tenant: 'a' })
    assert.equal(got.properties.contentType, 'application/octet-stream')
    assert.equal(got.properties.messageId, 'm-1')
    assert.equal(got.properties.type, 'quote')
    assert.equal(got.properties.appId, 'cli-test')
    assert.equal(got.properties.priority, 3)
    // Not persistent, and expiring with the call's deadline.
    assert.equal(got.properties.deliveryMode, 1)
    assert.equal(got.properties.expiration, '10000')
  })

  test('--json prints the reply with its properties and headers; --exchange with --file; --quiet', async () => {
    const queue = await serve('cli-call-json', async (message) => {
      const { sku } = message.json<{ sku: string }>()
      await message.replyJson({ sku, price: 12.5 }, { headers: { 'x-served-by': 'prices-1' } })
      return MessageStatus.SUCCESS
    })
    const exchange = uniqueName('cli-call-exchange')
    exchanges.push(exchange)
    await declareExchange(exchange, 'direct')
    await bindQueue(queue, exchange, 'prices.eu')
    const file = join(tmpdir(), `${uniqueName('cli-call-request')}.json`)
    writeFileSync(file, '{"sku": "A-1"}')
    const run = await runCliWithin(20_000, [
      'call',
      '--exchange',
      exchange,
      '--routing-key',
      'prices.eu',
      '--file',
      file,
      '--content-type',
      'application/json',
      '--json',
      '--quiet',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stderr, '')
    const line = JSON.parse(run.stdout) as {
      body: string
      bodyEncoding: string
      properties: Record<string, unknown>
      headers: Record<string, unknown>
    }
    assert.ok(run.stdout.endsWith('}\n') && run.stdout.indexOf('\n') === run.stdout.length - 1, 'one line')
    assert.deepEqual(JSON.parse(line.body), { sku: 'A-1', price: 12.5 })
    assert.equal(line.bodyEncoding, 'utf8')
    assert.equal(line.properties.contentType, 'application/json')
    assert.equal(typeof line.properties.correlationId, 'string')
    assert.deepEqual(line.headers, { 'x-served-by': 'prices-1' })
  })

  test('no reply by --timeout: exit 5 within the deadline', async () => {
    const { queue, held } = await silentServer('cli-call-silent')
    const child = spawnCli(['call', queue, 'anyone?', '--timeout', '1500ms'])
    children.push(child)
    // From the request's arrival: the deadline runs from the call, after the connection is open.
    await child.waitUntil(() => held.length === 1, 20_000, 'the server got the request')
    const t0 = performance.now()
    const run = await child.exited
    const elapsed = performance.now() - t0
    assert.equal(run.code, 5, run.stderr)
    assert.ok(elapsed < 1500 + 500, `exited ${elapsed.toFixed(0)} ms after the request arrived`)
    assert.equal(run.stdout, '')
    assert.match(run.stderr, new RegExp(`RPC_TIMEOUT: no reply from queue '${queue}' within 1500 ms`))
    for (const message of held) message.ack()
  })

  test('no queue: exit 3 at once, with a hint; a missing exchange: exit 6; no broker: exit 8', async () => {
    const missing = uniqueName('cli-call-missing')
    const t0 = performance.now()
    const unroutable = await runCliWithin(20_000, ['call', missing, 'hello', '--timeout', '1m'])
    const elapsed = performance.now() - t0
    assert.equal(unroutable.code, 3, unroutable.stderr)
    assert.ok(elapsed < 10_000, `a return, not the deadline: ${elapsed.toFixed(0)} ms`)
    assert.match(unroutable.stderr, /UNROUTABLE: .*NO_ROUTE/)
    assert.match(unroutable.stderr, new RegExp(`no queue '${missing}' exists`))

    const noExchange = await runCliWithin(20_000, [
      'call',
      '--exchange',
      uniqueName('cli-call-no-exchange'),
      '--routing-key',
      'k',
      'hello',
    ])
    assert.equal(noExchange.code, 6, noExchange.stderr)
    assert.match(noExchange.stderr, /NOT_FOUND/)

    const noBroker = await runCliWithin(30_000, [
      'call',
      missing,
      'hello',
      '--url',
      'amqp://app:secret@127.0.0.1:1',
    ])
    assert.equal(noBroker.code, 8, noBroker.stderr)
    assert.doesNotMatch(noBroker.stderr, /secret/)
  })

  test('Ctrl-C while waiting: the call is aborted at once, exit 130', async () => {
    const { queue, held } = await silentServer('cli-call-ctrl-c')
    const child = spawnCli(['call', queue, 'wait', '--timeout', '1m'], { group: true })
    children.push(child)
    await child.waitUntil(() => held.length === 1, 20_000, 'the server got the request')
    const t0 = performance.now()
    ctrlC(child)
    const run = await child.exited
    const elapsed = performance.now() - t0
    assert.equal(run.code, 130, run.stderr)
    assert.ok(elapsed < 3000, `exited ${elapsed.toFixed(0)} ms after Ctrl-C`)
    assert.match(run.stderr, /interrupted: no reply from queue/)
    assert.equal(run.stdout, '')
    for (const message of held) message.ack()
  })
})
