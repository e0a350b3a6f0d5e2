// Loaded before every test file (`--import`): any unhandled rejection or uncaught exception, even
// one that lands between tests or after the last one, fails the run.
const fail = (kind: string) => (err: unknown) => {
  process.exitCode = 1
  process.stderr.write(
    `\n${kind} in a test file: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  )
}
process.on('unhandledRejection', fail('unhandled rejection'))
process.on('uncaughtException', fail('uncaught exception'))
