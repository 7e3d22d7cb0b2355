/** A FUSE worker for fuse-crash.test.ts: a passthrough that dies on the message {die: code}. */
import { runFuseWorker } from '../../src/fuse/worker-runtime.js';
import { PassthroughFs, type PassthroughOptions } from '../../src/fuse/passthrough/fs.js';

runFuseWorker((user, ctx) => {
  const fs = new PassthroughFs(user as PassthroughOptions, (m) => ctx.post(m), ctx.notices);
  const onMessage = fs.onMessage.bind(fs);
  fs.onMessage = (msg: unknown): void => {
    const die = (msg as { die?: number }).die;
    if (die !== undefined) process.exit(die);
    onMessage(msg);
  };
  return fs;
});
