import type { Server } from 'node:http';

/**
 * How long an idle keep-alive connection stays open. Node closes it after 5 s, but a client (or a
 * load balancer, 60 s on AWS) that keeps its own idle connections longer can send a request on one
 * the server is closing at that moment, and gets a connection reset instead of an answer; a long
 * request that holds the event loop (a 35 MB transaction) makes that moment likely. The server
 * therefore outlasts the usual 60 s idle timeouts of the clients and proxies in front of it.
 */
const KEEP_ALIVE_MS = 65_000;

export function keepConnectionsAlive(server: Server): Server {
  server.keepAliveTimeout = KEEP_ALIVE_MS;
  // Headers must be allowed to arrive for at least as long as a connection may sit idle.
  server.headersTimeout = KEEP_ALIVE_MS + 1000;
  return server;
}
