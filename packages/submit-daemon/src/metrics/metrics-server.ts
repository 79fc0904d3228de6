/**
 * The Prometheus endpoint (daemon.metrics_listen): plain HTTP on a loopback
 * address, GET /metrics and nothing else. It has no authentication, which
 * is why the configuration refuses any address that is not loopback; a
 * remote Prometheus scrapes through an agent or proxy on the host.
 */
import { createServer, type Server } from 'node:http';
import type { Logger } from '../logging/logger.ts';
import type { SubmissionMetrics } from './submission-metrics.ts';

export class MetricsServer {
  private server: Server | null = null;

  constructor(
    private readonly metrics: SubmissionMetrics,
    private readonly address: { readonly host: string; readonly port: number },
    private readonly log: Logger,
  ) {}

  /** Rejects with a message naming daemon.metrics_listen and the address. */
  async listen(): Promise<void> {
    const server = createServer((request, response) => {
      const path = (request.url ?? '').split('?')[0];
      if (path !== '/metrics') {
        response.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: the metrics are at /metrics\n');
        return;
      }
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
        return;
      }
      this.metrics.exposition().then(
        ({ contentType, text }) => response.writeHead(200, { 'content-type': contentType }).end(request.method === 'HEAD' ? undefined : text),
        (err: unknown) => {
          this.log.error({ err: (err as Error).message }, 'collecting metrics failed');
          response.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('collecting metrics failed\n');
        },
      );
    });
    // Scrapers keep connections open between scrapes; keep that short and bounded.
    server.keepAliveTimeout = 5_000;
    server.requestTimeout = 10_000;
    server.maxConnections = 16;
    const where = this.address.host.includes(':') ? `[${this.address.host}]:${this.address.port}` : `${this.address.host}:${this.address.port}`;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(this.address.port, this.address.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      throw new Error(`daemon.metrics_listen: cannot listen on ${where}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    server.on('error', (err) => this.log.error({ err: err.message }, 'metrics endpoint failed'));
    this.server = server;
    this.log.info({ metrics: `http://${where}/metrics` }, 'metrics endpoint listening');
  }

  async close(): Promise<void> {
    const server = this.server;
    if (server === null) return;
    this.server = null;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
