/**
 * The pause gates of one worker process, one per admin scope it serves: the port, its pool, and each link
 * and endpoint it has touched. A transfer holds the combination of its five gates, so pausing any scope
 * holds its bytes in flight.
 */
import { CombinedGate, PauseGate, type Gate } from '../throttle/pause-gate.js';
import { linkEndpoints } from './model.js';

export class ScopeGates {
  readonly port = new PauseGate();
  readonly pool = new PauseGate();
  private readonly links = new Map<string, PauseGate>();
  private readonly endpoints = new Map<string, PauseGate>();

  link(name: string): PauseGate {
    let g = this.links.get(name);
    if (!g) this.links.set(name, (g = new PauseGate()));
    return g;
  }

  endpoint(name: string): PauseGate {
    let g = this.endpoints.get(name);
    if (!g) this.endpoints.set(name, (g = new PauseGate()));
    return g;
  }

  forTransfer(link: string): Gate {
    const [src, dst] = linkEndpoints(link);
    return new CombinedGate([this.port, this.pool, this.link(link), this.endpoint(src), this.endpoint(dst)]);
  }
}
