#!/usr/bin/env node
// The `lapinmq` command (package.json "bin"): publish, consume, call, pipe, queue, declare, delete,
// purge and demo. A client of lapinmq's public API only.
import { main } from './program.js'

process.exitCode = await main(process.argv.slice(2))
