/** The FUSE worker script of the passthrough file system (started by FuseMount). */
import { runFuseWorker } from '../worker-runtime.js';
import { PassthroughFs, type PassthroughOptions } from './fs.js';

runFuseWorker((user, ctx) => new PassthroughFs(user as PassthroughOptions, (m) => ctx.post(m), ctx.notices));
