// The 503 page both engines send (errorfile) when a request waited `timeout queue` for a web node, or when no web
// node is up: a whole HTTP response, with Retry-After.
//
// Retry-After is 5 seconds: the request already waited the queue timeout (5 s by default) for a slot, so the
// overload lasts at least that long; a browser or client library that honours it comes back once the queue had
// time to drain, instead of adding to the flood at once; longer would keep users away after a short spike.
export const ERROR_DIR = '/etc/haproxy/errors';
export const ERROR_503 = `${ERROR_DIR}/503.http`;
export const RETRY_AFTER = 5;

export function errorPage503(): string {
  const body =
    '<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>Busy</title></head>\n' +
    '<body><h1>The site is busy</h1>\n' +
    `<p>Too many visitors at once. Please try again in ${RETRY_AFTER} seconds.</p></body></html>\n`;
  return (
    'HTTP/1.1 503 Service Unavailable\r\n' +
    'Content-Type: text/html; charset=utf-8\r\n' +
    'Cache-Control: no-cache\r\n' +
    `Retry-After: ${RETRY_AFTER}\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n' +
    '\r\n' +
    body
  );
}
