/** The FUSE worker script of `litefs mount`: opens the store on this thread and serves the mount. */
import { runFuseWorker } from '../fuse/worker-runtime.js';
import type { StoreOptions } from '../store/messages.js';
import { Store } from '../store/store.js';
import { LiteFS } from './litefs-fs.js';

runFuseWorker((user, ctx) => {
  const post = (event: unknown): void => ctx.post(event);
  const store = new Store(user as StoreOptions, post, ctx.log);
  store.open();
  return new LiteFS(store, post, ctx.log);
});
