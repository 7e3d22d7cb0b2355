/** The FUSE worker script of `litefs mount`: opens the store on this thread and serves the mount. */
import { runFuseWorker } from '../fuse/worker-runtime.js';
import type { StoreEvent, StoreOptions } from '../store/messages.js';
import { Store } from '../store/store.js';
import { LiteFS } from './litefs-fs.js';

runFuseWorker((user, ctx) => {
  let fs: LiteFS | null = null;
  // Events reach the file system (kernel cache invalidation) and the main thread.
  const post = (event: StoreEvent): void => {
    fs?.onStoreEvent(event);
    ctx.post(event);
  };
  const store = new Store(user as StoreOptions, post, ctx.log);
  store.open();
  fs = new LiteFS(store, post, ctx.log, ctx.notices);
  return fs;
});
