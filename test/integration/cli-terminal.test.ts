// What a person sees. In a real terminal (a detached tmux session of fixed size, on a tmux server of
// this test's own) `lapinmq demo` and `lapinmq pipe` show one status line redrawn in place, never
// wider than the terminal; piped, every command prints plain lines without a control character.
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import {
  closeAdmin,
  declareQueue,
  deleteQueue,
  publishRaw,
  queueCount,
  uniqueName,
} from '../helpers/broker.ts'
import { cliPath, isPlain, runCli } from '../helpers/cli.ts'

const execFileP = promisify(execFile)
// A real terminal: tmux (installed by .ci/run when missing). Never skipped: without it this fails.
const tmuxBin = 'tmux'
const socket = `lapinmq-test-${randomUUID().slice(0, 8)}`
const width = 120
const queues: string[] = []

const tmux = async (...args: string[]): Promise<string> =>
  (await execFileP(tmuxBin, ['-L', socket, ...args], { timeout: 10_000 })).stdout

/** Starts `command` in a detached session of `width` x 24; the shell stays to keep the pane. */
async function inTerminal(session: string, command: string): Promise<void> {
  await tmux(
    'new-session',
    '-d',
    '-s',
    session,
    '-x',
    String(width),
    '-y',
    '24',
    `${command}; echo EXIT=$?; sleep 120`,
  )
}

/** Captures the pane every 150 ms until `done` matches, returning every distinct screen. */
async function screens(session: string, done: RegExp, timeoutMs = 60_000): Promise<string[]> {
  const seen: string[] = []
  const end = Date.now() + timeoutMs
  for (;;) {
    const screen = await tmux('capture-pane', '-p', '-t', session)
    if (seen.at(-1) !== screen) seen.push(screen)
    if (done.test(screen)) return seen
    if (Date.now() > end) throw new Error(`timed out; last screen:\n${screen}`)
    await new Promise((r) => setTimeout(r, 150))
  }
}

const node = `'${process.execPath}' '${cliPath}'`

describe('lapinmq in a terminal and in a pipe', () => {
  after(async () => {
    await tmux('kill-server').catch(() => undefined)
    for (const queue of queues) await deleteQueue(queue)
    await closeAdmin()
  })

  test('demo: one live status line, updated in place, then the summary', async () => {
    await inTerminal('demo', `${node} demo --count 20000`)
    const shots = await screens('demo', /^EXIT=\d+$/m)
    const final = shots.at(-1) ?? ''
    assert.match(final, /^OK: every message arrived exactly once$/m)
    assert.match(final, /^EXIT=0$/m)
    const live = shots
      .map((s) => s.split('\n').filter((l) => /in-flight [\d,]+ {2}confirmed/.test(l)))
      .filter((lines) => lines.length > 0)
    // Redrawn in place: every screen shows the status line once, never a scroll of them.
    for (const lines of live)
      assert.equal(lines.length, 1, `one status line per screen:\n${lines.join('\n')}`)
    const distinct = new Set(live.map((lines) => lines[0]))
    assert.ok(distinct.size >= 3, `the status line changes as the demo runs (${distinct.size} versions)`)
    for (const line of distinct) {
      assert.ok((line ?? '').length < width && !line?.endsWith('…'), `fits the terminal: ${line}`)
      assert.match(
        line ?? '',
        /^[█░]+ +\d+% {2}in [\d,]+\/s {2}out [\d,]+\/s {2}in-flight [\d,]+ {2}confirmed [\d,]+ {2}acked [\d,]+ {2}lost (-|\d+)$/,
      )
    }
    // The last status drawn stays on screen, complete: 100%, nothing in flight, nothing lost.
    assert.match(final, /█ 100% .*in-flight 0 {2}confirmed 20,000 {2}acked 20,000 {2}lost 0$/m)
    assert.doesNotMatch(final, /^progress: /m, 'no plain progress lines on a terminal')
  })

  test('pipe --count: a live progress bar on a terminal, then a one-line summary', async () => {
    const from = uniqueName('cli-tty-from')
    const to = uniqueName('cli-tty-to')
    queues.push(from, to)
    await declareQueue(from)
    await declareQueue(to)
    const bodies = Array.from({ length: 3000 }, (_, i) => `m-${i}`)
    for (let i = 0; i < bodies.length; i += 1000) await publishRaw(from, bodies.slice(i, i + 1000))
    await inTerminal('pipe', `${node} pipe ${from} ${to} --count 3000 --prefetch 2`)
    const shots = await screens('pipe', /^EXIT=\d+$/m)
    const final = shots.at(-1) ?? ''
    assert.match(final, /^EXIT=0$/m)
    assert.match(final, /^moved 3,000 messages from/m)
    const bars = shots.flatMap((s) => s.split('\n').filter((l) => /^[█░]+ +\d+% {2}moved/.test(l)))
    assert.ok(new Set(bars).size >= 2, `a progress bar that moves:\n${bars.join('\n')}`)
    assert.equal(await queueCount(to), 3000)
  })

  test('piped (not a terminal): plain lines, no escape sequence or carriage return, from every command', async () => {
    const queue = uniqueName('cli-plain')
    queues.push(queue)
    await declareQueue(queue)
    const sink = uniqueName('cli-plain-sink')
    queues.push(sink)
    await declareQueue(sink)
    const runs = [
      await runCli(['demo', '--count', '3000']),
      await runCli(['publish', queue, '--lines'], { input: 'a\nb\nc\nd\n' }),
      await runCli(['publish', queue, '--lines', '--exchange', 'amq.direct'], { input: 'x\n' }),
      await runCli(['consume', queue, '--count', '1', '--json']),
      await runCli(['consume', queue, '--count', '1', '--exec', 'cat']),
      await runCli(['pipe', queue, sink, '--idle', '1']),
      await runCli(['publish', '--bad-flag']),
    ]
    for (const run of runs)
      assert.ok(isPlain(run.stdout + run.stderr), `plain output:\n${run.stdout}${run.stderr}`)
    const demo = runs[0]
    assert.match(demo?.stdout ?? '', /^progress: published \d+, .* msg\/s$/m, 'plain progress lines instead')
    assert.equal(await queueCount(sink), 2)
  })
})
