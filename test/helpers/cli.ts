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
  /** stdout as the bytes written. */
  stdoutBytes: Buffer
}

export interface CliOptions {
  /** Written to stdin, which is then closed. */
  input?: string | Buffer
  env?: Record<string, string | undefined>
  /** Runs the command as the leader of a process group of its own, as a shell runs a job: a
   * terminal's Ctrl-C reaches the whole group (see `ctrlC`). */
  group?: boolean
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
export function spawnCli(args: readonly string[], options: CliOptions = {}): CliChild {
  const child = spawn(process.execPath, [cliPath, ...args], {
    cwd: repo,
    env: { ...process.env, ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: options.group === true,
  })
  const chunks: Buffer[] = []
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    chunks.push(chunk)
    stdout += chunk.toString('utf8')
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
    stdoutBytes: Buffer.concat(chunks),
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
export function runCli(args: readonly string[], options: CliOptions = {}): Promise<CliRun> {
  return spawnCli(args, options).exited
}

/** A terminal's Ctrl-C: SIGINT to every process of the job (started with `group: true`). */
export function ctrlC(child: CliChild): void {
  if (child.process.pid !== undefined) process.kill(-child.process.pid, 'SIGINT')
}

/**
 * Runs `lapinmq ...args` to the end, or fails after `timeoutMs` (killing it) with what it printed:
 * for runs that must end on their own.
 */
export async function runCliWithin(
  timeoutMs: number,
  args: readonly string[],
  options: CliOptions = {},
): Promise<CliRun> {
  const child = spawnCli(args, options)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      killCli(child)
      reject(new Error(`lapinmq ${args.join(' ')} still running after ${timeoutMs} ms:\n${child.stderr()}`))
    }, timeoutMs)
  })
  try {
    return await Promise.race([child.exited, late])
  } finally {
    clearTimeout(timer)
  }
}

/** Kills a child that is still running (for `after()` hooks). */
export function killCli(child: CliChild | undefined): void {
  const pid = child?.process.pid
  if (!child || pid === undefined || child.process.exitCode !== null || child.process.signalCode !== null)
    return
  try {
    // The whole job when it leads a group of its own (the commands it runs included).
    process.kill(-pid, 'SIGKILL')
  } catch {
    child.process.kill('SIGKILL')
  }
}

/** True when the text has no terminal control character (escape sequences, carriage returns). */
export function isPlain(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it looks for
  return !/[\x1b\r\x07\x08]/.test(text)
}

const shellQuote = (arg: string): string => `'${arg.replaceAll("'", "'\\''")}'`

/**
 * Runs `lapinmq ...args` in a pseudo-terminal (util-linux `script`): stdout and stderr are a
 * terminal, as when a person runs it. Resolves with the exit code and every byte the terminal got.
 */
export async function runCliInTerminal(
  args: readonly string[],
  timeoutMs = 20_000,
): Promise<{ code: number | null; output: Buffer }> {
  const line = [process.execPath, cliPath, ...args].map(shellQuote).join(' ')
  const child = spawn('script', ['-q', '-e', '-c', `stty cols 120 rows 24; exec ${line}`, '/dev/null'], {
    cwd: repo,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const chunks: Buffer[] = []
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const [code] = (await once(child, 'close')) as [number | null]
  clearTimeout(timer)
  return { code, output: Buffer.concat(chunks) }
}
