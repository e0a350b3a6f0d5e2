// Runs a TypeScript file (an example or a fixture) as a child process through tsx, collecting its
// stdout line by line so a test can wait for what it prints.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { waitFor } from './broker.ts'

export interface TsChild {
  readonly process: ChildProcess
  /** Complete stdout lines printed so far. */
  readonly lines: string[]
  /** Everything printed on stderr so far. */
  stderr(): string
  /** Waits until `check` is true; fails early if the child exits first, or after `timeoutMs`. */
  waitUntil(check: () => boolean, timeoutMs?: number, what?: string): Promise<void>
  /** Waits until some stdout line satisfies `match`. */
  waitForLine(match: (line: string) => boolean, timeoutMs?: number, what?: string): Promise<void>
  /** Resolves with the exit code and signal once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

/**
 * Spawns `node --import tsx <file>` (plus `extraArgs` before the file) in the repository root, with
 * `env` over this process's environment (an `undefined` value removes a variable).
 */
export function spawnTs(
  file: string,
  env: Record<string, string | undefined> = {},
  extraArgs: string[] = [],
): TsChild {
  const child = spawn(process.execPath, ['--import', 'tsx', ...extraArgs, file], {
    cwd: new URL('../../', import.meta.url),
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const lines: string[] = []
  let partial = ''
  let stderr = ''
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    lines.push(...parts)
  })
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk
  })
  const exited = once(child, 'close').then(([code, signal]) => {
    if (partial) lines.push(partial)
    return { code: code as number | null, signal: signal as NodeJS.Signals | null }
  })
  const waitUntil = (check: () => boolean, timeoutMs = 20_000, what = 'a condition'): Promise<void> =>
    waitFor(
      () => {
        if (check()) return true
        if (child.exitCode !== null || child.signalCode !== null) {
          throw new Error(`child exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${stderr}`)
        }
        return false
      },
      timeoutMs,
      what,
    )
  return {
    process: child,
    lines,
    stderr: () => stderr,
    waitUntil,
    waitForLine: (match, timeoutMs, what = 'a line') => waitUntil(() => lines.some(match), timeoutMs, what),
    exited,
  }
}

/** Kills a child that is still running (for `after()` hooks). */
export function killIfRunning(child: TsChild | undefined): void {
  if (child && child.process.exitCode === null && child.process.signalCode === null)
    child.process.kill('SIGKILL')
}
