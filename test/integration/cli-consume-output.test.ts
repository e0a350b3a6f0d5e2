// What `lapinmq consume` writes, and what it acks for it. A message is acked once stdout took its
// output: a reader that leaves (`| head`) stops the consumer and everything not written stays in
// the queue. A --requeue peek ends with the queue. On a terminal, message ids and bodies cannot
// drive the terminal (escape sequences are shown escaped), and the status line is redrawn a few
// times a second, not once per message; piped, a body is written as its exact bytes.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, describe, test } from 'node:test'
import * as amqplib from 'amqplib'
import {
  brokerUrl,
  closeAdmin,
  declareQueue,
  deleteQueue,
  publishRaw,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { cliPath, runCliInTerminal, runCliWithin, spawnCli } from '../helpers/cli.ts'

const queues: string[] = []

async function queueWith(prefix: string, bodies: string[]): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue)
  await declareQueue(queue)
  for (let i = 0; i < bodies.length; i += 1000) await publishRaw(queue, bodies.slice(i, i + 1000))
  return queue
}

async function publishBytes(
  queue: string,
  body: Buffer,
  options: amqplib.Options.Publish = {},
): Promise<void> {
  const conn = await amqplib.connect(brokerUrl)
  try {
    const ch = await conn.createConfirmChannel()
    ch.sendToQueue(queue, body, { persistent: true, ...options })
    await ch.waitForConfirms()
  } finally {
    await conn.close()
  }
}

const numbered = (n: number) => Array.from({ length: n }, (_, i) => `msg-${i}`)

/** Text a message could hold to take over a terminal: a window title, a colour, a bell. */
const hostile = 'title\x1b]0;pwned\x07 red\x1b[31m'

describe('lapinmq consume output', () => {
  after(async () => {
    for (const queue of queues) await deleteQueue(queue)
    await closeAdmin()
  })

  test('into a pipe whose reader left without reading: nothing acked, all 200 stay, exit non-zero', async () => {
    const queue = await queueWith('cli-reader-gone', numbered(200))
    const child = spawnCli(['consume', queue])
    // The reader goes away before the first message is written.
    child.process.stdout?.destroy()
    const run = await child.exited
    assert.notEqual(run.code, 0, run.stderr)
    assert.match(run.stderr, /stdout closed.* 0 messages written/)
    await waitFor(async () => (await queueCount(queue)) === 200, 5_000, 'all 200 back in the queue')
  })

  test('| head -3: what was written is acked, everything else stays; the command says how many', async () => {
    const queue = await queueWith('cli-reader-head', numbered(2000))
    const child = spawn(
      'bash',
      ['-o', 'pipefail', '-c', `'${process.execPath}' '${cliPath}' consume '${queue}' | head -3`],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
    })
    const [code] = await once(child, 'close')
    assert.notEqual(code, 0, stderr)
    assert.equal(stdout, 'msg-0\nmsg-1\nmsg-2\n')
    const written = Number(/ ([\d,]+) messages? written/.exec(stderr)?.[1]?.replaceAll(',', ''))
    assert.ok(written >= 3, stderr)
    assert.match(stderr, new RegExp(`: ${written.toLocaleString('en-US')} acked`))
    await waitFor(
      async () => (await queueCount(queue)) === 2000 - written,
      5_000,
      `${2000 - written} left in the queue`,
    )
  })

  test('--requeue on a short queue ends when it has shown them all; on an empty queue at once', async () => {
    const queue = await queueWith('cli-peek-short', numbered(3))
    const run = await runCliWithin(10_000, ['consume', queue, '--requeue'])
    assert.equal(run.code, 0, run.stderr)
    assert.equal(run.stdout, 'msg-0\nmsg-1\nmsg-2\n')
    await waitFor(async () => (await queueCount(queue)) === 3, 5_000, 'all 3 still in the queue')
    const empty = await queueWith('cli-peek-empty', [])
    const none = await runCliWithin(10_000, ['consume', empty, '--requeue', '--count', '5'])
    assert.equal(none.code, 0, none.stderr)
    assert.equal(none.stdout, '')
  })

  test('control characters in a message id are escaped in what lapinmq prints', async () => {
    const queue = await queueWith('cli-escape-id', [])
    await publishBytes(queue, Buffer.from('x'), { messageId: hostile })
    const run = await runCliWithin(15_000, [
      'consume',
      queue,
      '--exec',
      'cat >/dev/null; exit 1',
      '--max-attempts',
      '1',
      '--idle',
      '1',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.ok(
      // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
      !/[\x00-\x08\x0b-\x1f\x7f]/.test(run.stderr),
      `no control character in:\n${JSON.stringify(run.stderr)}`,
    )
    assert.ok(run.stderr.includes(String.raw`message 'title\x1b]0;pwned\x07 red\x1b[31m'`), run.stderr)
  })

  test('on a terminal, bodies are shown escaped; piped, they are the exact bytes', async () => {
    const binary = Buffer.from([0x00, 0xff, 0x9b, 0x32, 0x4a, 0x0a]) // 0x9b: an 8-bit CSI ("clear")
    const queue = await queueWith('cli-escape-body', [])
    await publishBytes(queue, Buffer.from(hostile))
    await publishBytes(queue, binary)
    const shown = await runCliInTerminal(['consume', queue, '--count', '2', '--requeue'])
    assert.equal(shown.code, 0, shown.output.toString())
    const screen = shown.output
    for (const bad of [
      Buffer.from('\x1b]0;pwned'),
      Buffer.from([0x07]),
      Buffer.from([0x00]),
      Buffer.from([0x9b, 0x32]),
      Buffer.from([0xff]),
    ])
      assert.equal(
        screen.indexOf(bad),
        -1,
        `no raw ${JSON.stringify(bad)} on the terminal:\n${JSON.stringify(screen.toString('latin1'))}`,
      )
    const text = screen.toString('utf8')
    assert.ok(text.includes(String.raw`title\x1b]0;pwned\x07 red\x1b[31m`), text)
    assert.ok(text.includes(String.raw`\x00\xff\x9b2J`), text)

    const piped = await runCliWithin(15_000, ['consume', queue, '--count', '2'])
    assert.equal(piped.code, 0, piped.stderr)
    assert.deepEqual(piped.stdoutBytes, Buffer.concat([Buffer.from(`${hostile}\n`), binary]))
  })

  test('on a terminal, the status line is redrawn a few times a second, not per message', async () => {
    const queue = await queueWith('cli-redraws', numbered(5000))
    const started = performance.now()
    const run = await runCliInTerminal(['consume', queue, '--count', '5000'], 30_000)
    const seconds = (performance.now() - started) / 1000
    assert.equal(run.code, 0, run.output.toString().slice(-2000))
    const redraws = run.output.toString('latin1').split('\x1b[2K').length - 1
    assert.ok(redraws <= 10 * seconds + 10, `${redraws} erases and redraws in ${seconds.toFixed(1)} s`)
  })
})
