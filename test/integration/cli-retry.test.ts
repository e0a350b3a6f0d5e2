// The command's part of the retry ladder: `consume --exec --retry-delays` sends a message whose
// command fails through the delay queues to `<queue>.dead`, and `pipe <queue>.dead <queue>`
// replays it with the ladder's headers removed, so that it starts the ladder over.
import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { Consumer, type Message, MessageStatus } from 'lapinmq'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  drainQueue,
  queueCount,
  uniqueName,
  waitFor,
} from '../helpers/broker.ts'
import { runCli, runCliWithin } from '../helpers/cli.ts'

const delays = [200, 400]
const queues: string[] = []
let scratch = ''

/** A work queue, with the ladder queues `consume --retry-delays 200ms,400ms` declares, to delete after. */
async function newQueue(prefix: string): Promise<string> {
  const queue = uniqueName(prefix)
  queues.push(queue, `${queue}.dead`, ...delays.map((ms) => `${queue}.retry.${ms}`))
  await declareQueue(queue)
  return queue
}

/** The headers the command saw (LAPINMQ_HEADERS), one object per run. */
async function runsOf(file: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(file, 'utf8').catch(() => '')
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

const ladderHeaderNames = (headers: Record<string, unknown> | undefined): string[] =>
  Object.keys(headers ?? {}).filter((name) => name.startsWith('x-lapinmq-'))

/**
 * Runs `consume --exec` with a command that always fails (it records the headers it was given)
 * until the queue and its delay queues are empty: --idle ends it once nothing came for 3 s.
 */
function consumeFailing(queue: string, record: string) {
  return runCliWithin(60_000, [
    'consume',
    queue,
    '--exec',
    `cat >/dev/null; printf '%s\\n' "$LAPINMQ_HEADERS" >> '${record}'; printf '%s\\n' "$LAPINMQ_ATTEMPT" >> '${record}.attempts'; exit 3`,
    '--retry-delays',
    '200ms,400ms',
    '--idle',
    '3',
  ])
}

describe('lapinmq consume --retry-delays, pipe <queue>.dead <queue>', () => {
  before(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'lapinmq-cli-retry-'))
  })
  after(async () => {
    for (const queue of queues) await deleteQueue(queue)
    await rm(scratch, { recursive: true, force: true })
    await closeAdmin()
  })

  test('a command that always fails: 3 runs (after 200 ms, then 400 ms), then the message is in <queue>.dead with x-lapinmq-attempt 3', async () => {
    const queue = await newQueue('cli-retry-ladder')
    const published = await runCli(['publish', queue, 'payload', '--message-id', 'm-1', '-H', 'x-tenant=a'])
    assert.equal(published.code, 0, published.stderr)
    const record = join(scratch, 'ladder-runs')
    const run = await consumeFailing(queue, record)
    assert.equal(run.code, 0, run.stderr)

    const runs = await runsOf(record)
    assert.equal(runs.length, 3, `the command ran ${runs.length} times:\n${run.stderr}`)
    // What each run saw of the ladder: nothing on the first, then the failures counted so far.
    assert.deepEqual(
      runs.map((headers) => headers['x-lapinmq-attempt']),
      [undefined, 1, 2],
    )
    const attempts = await readFile(`${record}.attempts`, 'utf8')
    assert.deepEqual(attempts.split('\n').filter(Boolean), ['1', '2', '3'], 'LAPINMQ_ATTEMPT')
    assert.match(run.stderr, /command exited with 3 for message 'm-1'; retried in 200ms \(attempt 1 of 3\)/)
    assert.match(run.stderr, /command exited with 3 for message 'm-1'; retried in 400ms \(attempt 2 of 3\)/)
    assert.match(
      run.stderr,
      new RegExp(
        `command exited with 3 for message 'm-1'; dead-lettered after 3 attempts \\(queue '${queue}\\.dead'\\)`,
      ),
    )
    assert.match(run.stderr, /: 0 acked, 2 delayed, 1 dead-lettered, 3 command failures/)

    for (const name of [queue, ...delays.map((ms) => `${queue}.retry.${ms}`)]) {
      assert.equal(await queueCount(name), 0, `${name} is empty`)
    }
    const dead = await drainQueue(`${queue}.dead`)
    assert.equal(dead.length, 1)
    const [message] = dead
    assert.equal(message?.content.toString(), 'payload')
    assert.equal(message?.properties.messageId, 'm-1')
    const headers = message?.properties.headers ?? {}
    assert.equal(headers['x-lapinmq-attempt'], 3)
    assert.equal(headers['x-lapinmq-last-error'], 'fail_retry_later')
    assert.equal(headers['x-lapinmq-queue'], queue)
    assert.equal(headers['x-lapinmq-original-exchange'], '')
    assert.equal(headers['x-lapinmq-original-routing-key'], queue)
    assert.equal(typeof headers['x-lapinmq-first-failure'], 'number')
    assert.equal(headers['x-tenant'], 'a')
  })

  test('pipe <queue>.dead <queue> replays a dead letter from attempt 1, without x-lapinmq-* headers: the whole ladder runs again', async () => {
    const queue = await newQueue('cli-retry-replay')
    await runCli(['publish', queue, 'payload', '--message-id', 'm-2', '-H', 'x-tenant=b'])
    const first = await consumeFailing(queue, join(scratch, 'replay-first-runs'))
    assert.equal(first.code, 0, first.stderr)
    assert.equal(await queueCount(`${queue}.dead`), 1)

    const pipe = await runCli(['pipe', `${queue}.dead`, queue, '--idle', '1'])
    assert.equal(pipe.code, 0, pipe.stderr)
    assert.match(pipe.stderr, /moved 1 message from/)
    assert.equal(await queueCount(`${queue}.dead`), 0)

    // The library's consumer with the same ladder: the attempts it counts, and the headers it sees.
    const seen: { attempt: number; headers: Record<string, unknown> }[] = []
    const consumer = new Consumer({
      queueName: queue,
      retry: { delays },
      taskFunction: (message: Message) => {
        seen.push({ attempt: message.attempt, headers: message.headers })
        return MessageStatus.FAIL_RETRY_LATER
      },
    })
    await consumer.start()
    try {
      await waitFor(
        async () => (await queueCount(`${queue}.dead`)) === 1,
        20_000,
        'the dead letter back in .dead',
      )
    } finally {
      await consumer.stop()
    }
    assert.deepEqual(
      seen.map((s) => s.attempt),
      [1, 2, 3],
    )
    const replayed = seen[0]?.headers ?? {}
    assert.deepEqual(ladderHeaderNames(replayed), [], 'no x-lapinmq-* header on the replayed message')
    assert.equal(replayed['x-tenant'], 'b', 'the other headers kept')
    const [again] = await drainQueue(`${queue}.dead`)
    assert.equal(again?.properties.headers?.['x-lapinmq-attempt'], 3)
  })

  test('pipe --keep-headers keeps them: back in its queue, the message has one attempt left', async () => {
    const queue = await newQueue('cli-retry-keep')
    await runCli(['publish', queue, 'payload', '--message-id', 'm-3'])
    const first = await consumeFailing(queue, join(scratch, 'keep-first-runs'))
    assert.equal(first.code, 0, first.stderr)

    const pipe = await runCli(['pipe', `${queue}.dead`, queue, '--idle', '1', '--keep-headers'])
    assert.equal(pipe.code, 0, pipe.stderr)
    const record = join(scratch, 'keep-second-runs')
    const second = await consumeFailing(queue, record)
    assert.equal(second.code, 0, second.stderr)
    const runs = await runsOf(record)
    assert.equal(runs.length, 1, `the command ran ${runs.length} times:\n${second.stderr}`)
    assert.equal(runs[0]?.['x-lapinmq-attempt'], 3)
    assert.match(second.stderr, /dead-lettered after 3 attempts/)
    assert.equal(await queueCount(`${queue}.dead`), 1)
  })

  test('a message given back untried (--count reached) takes no step along the ladder', async () => {
    const queue = await newQueue('cli-retry-untried')
    await runCli(['publish', queue, 'one', '--message-id', 'm-4'])
    await runCli(['publish', queue, 'two', '--message-id', 'm-5'])
    // Two commands at once, --count 1: the second message waits for room, then is given back.
    const run = await runCliWithin(30_000, [
      'consume',
      queue,
      '--exec',
      'cat >/dev/null; sleep 0.5',
      '--concurrency',
      '2',
      '--count',
      '1',
      '--retry-delays',
      '200ms,400ms',
    ])
    assert.equal(run.code, 0, run.stderr)
    assert.match(run.stderr, /: 1 acked/)
    assert.doesNotMatch(run.stderr, /delayed|dead-lettered/)
    await sleep(1_000) // a step along the ladder would have brought it back by now, marked
    const left = await drainQueue(queue)
    assert.equal(left.length, 1)
    assert.deepEqual(ladderHeaderNames(left[0]?.properties.headers), [])
    assert.equal(await queueCount(`${queue}.dead`), 0)
  })

  test('usage errors (exit 2): a bad delay is named; --retry-delays needs --exec and replaces --retry-delay and --max-attempts', async () => {
    const cases: [string[], RegExp][] = [
      [['--exec', 'true', '--retry-delays', '1s,10x,1m'], /'10x' is not a duration/],
      [['--exec', 'true', '--retry-delays', '1s,0'], /'0' is not a delay/],
      [
        ['--retry-delays', '1s'],
        /--retry-delays retries the messages whose --exec command failed: give --exec too/,
      ],
      [
        ['--exec', 'true', '--retry-delays', '1s', '--max-attempts', '3'],
        /cannot be used with option '--max-attempts/,
      ],
      [
        ['--exec', 'true', '--retry-delays', '1s', '--retry-delay', '5'],
        /cannot be used with option '--retry-delay /,
      ],
      [['--exec', 'true', '--dead-letter-queue', 'q.failed'], /give --retry-delays too/],
      [
        ['--exec', 'true', '--retry-delays', '1s', '--dead-letter-queue', 'q.retry.1000'],
        /must differ from the queue/,
      ],
    ]
    for (const [args, message] of cases) {
      const run = await runCli(['consume', 'q', ...args])
      assert.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`)
      assert.match(run.stderr, message)
    }
  })
})
