// `lapinmq demo`, runnable on its own as before: `node --import tsx src/cli/demo.ts [flags]` is
// `lapinmq demo [flags]` (`npm start` runs `lapinmq demo`). The demo itself is in demo-run.ts.
import { main } from './program.js'

process.exitCode = await main(['demo', ...process.argv.slice(2)])
