/**
 * The Leaser `litefs.yml` asks for (ref §10, ARCHITECTURE §8): static,
 * Consul or etcd. For Consul and etcd, `lease.hostname` defaults to this
 * machine's name and `lease.advertise-url` to `http://<hostname>:<http port>`
 * (LiteFS's defaults); for static both name the primary on every node.
 */
import { ConsulLeaser } from '../lease/consul.js';
import { EtcdLeaser } from '../lease/etcd.js';
import type { Leaser } from '../lease/lease.js';
import { StaticLeaser } from '../lease/static.js';
import type { Config } from './config.js';
import { ConfigError } from './config.js';

export function createLeaser(config: Config, machineHostname: string, httpPort: number): Leaser {
  const lease = config.lease;
  const hostname = lease.hostname !== '' ? lease.hostname : machineHostname;
  const advertiseURL = lease.advertiseURL !== '' ? lease.advertiseURL : `http://${hostname}:${httpPort}`;
  switch (lease.type) {
    case 'static':
      return new StaticLeaser({ hostname: lease.hostname, advertiseURL: lease.advertiseURL, candidate: lease.candidate });
    case 'consul':
      return new ConsulLeaser({
        url: lease.consul.url,
        key: lease.consul.key,
        hostname,
        advertiseURL,
        ttlMs: lease.consul.ttlMs,
        lockDelayMs: lease.consul.lockDelayMs,
      });
    case 'etcd':
      return new EtcdLeaser({
        endpoints: lease.etcd.endpoints,
        key: lease.etcd.key,
        hostname,
        advertiseURL,
        ttlMs: lease.etcd.ttlMs,
        username: lease.etcd.username,
        password: lease.etcd.password,
      });
    default:
      throw new ConfigError(`not supported yet: lease.type ${lease.type}`);
  }
}
