// Runs the built `lapinmq` command (dist/cli/lapinmq.js, built by `npm run build`) as a user runs
// it: a child process with its own stdin, stdout, stderr and exit code.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { waitFor } from './broker.ts'

const repo = new URL('../../', import.meta.url)
export const cliPath = new URL('dist/cli/lapinmq.js', repo).pathname

if (!existsSync(cliPath)) throw new Error(`${cliPath} is missing: run npm run build first`)

export interface CliRun {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface CliChild {
  readonly process: ChildProcess
  stdout(): string
  stderr(): string
  /** Waits until `check` holds; fails if the child exits first or after `timeoutMs`. */
  waitUntil(check: () => boolean | Promise<boolean>, timeoutMs?: number, what?: string): Promise<void>
  readonly exited: Promise<CliRun>
}

/** Starts `node dist/cli/lapinmq.js ...args`, writing `input` (if any) to its stdin. */
export function spawnCli(
  args: readonly string[],
  options: { input?: string; env?: Record<string, string | undefined> } = {},
): CliChild {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: repo,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
  })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  child.stdin.on('error', () => {})
  child.stdin.end(options.input ?? '')
  const exited = once(child, 'close').then(([code, signal]) => ({
    code: code as number | null,
    signal: signal as NodeJS.Signals | null,
    stdout,
    stderr,
  }))
  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    waitUntil: (check, timeoutMs = 20_000, what = 'a condition') =>
      waitFor(
        async () => {
          if (await check()) return true
          if (child.exitCode !== null || child.signalCode !== null) {
            throw new Error(
              `lapinmq exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${stderr}`,
            )
          }
          return false
        },
        timeoutMs,
        what,
      ),
    exited,
  }
}

/** Runs `lapinmq ...args` to the end. */
export function runCli(
  args: readonly string[],
  options: { input?: string; env?: Record<string, string | undefined> } = {},
): Promise<CliRun> {
  return spawnCli(args, options).exited
}

/** Kills a child that is still running (for `after()` hooks). */
export function killCli(child: CliChild | undefined): void {
  if (child && child.process.exitCode === null && child.process.signalCode === null)
    child.process.kill('SIGKILL')
}

/** True when the text has no terminal control character (escape sequences, carriage returns). */
export function isPlain(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return !/[\x1b\r\x07\x08]/.test(text)
}
