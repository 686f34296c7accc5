// `errorfile <code> <file>`: a whole HTTP response, read and checked when the configuration is read (as HAProxy
// 2.6 does: a status it handles, a file that opens, at most tune.bufsize bytes (16384: longer is cut with a
// warning), a response head that parses, no chunked body, a body as long as its Content-Length), then sent as it
// is in place of the proxy's own answer with that status.
import { readFileSync } from 'node:fs';
import type { Alert, Where } from './config-types.ts';
import { findHeadEnd, parseResponseHead } from './http.ts';

/** The statuses HAProxy 2.6 takes an errorfile for. */
export const ERRORFILE_CODES = [200, 400, 401, 403, 404, 405, 407, 408, 410, 413, 421, 422, 425, 429, 500, 501, 502, 503, 504];
const BUFSIZE = 16384;

/** `errorfile CODE FILE` (w: the words of the line): the response's bytes, as a latin1 string. */
export function loadErrorfile(w: string[], where: Where, warnings: Alert[]): { code: number; response: string } {
  if (w.length !== 3 || !/^\d+$/.test(w[1])) throw new Error('errorfile : expects <status_code> and <file> as arguments.');
  const code = Number(w[1]);
  const file = w[2];
  if (!ERRORFILE_CODES.includes(code)) throw new Error(`errorfile : status code '${code}' not handled.`);
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch {
    throw new Error(`errorfile : error opening file '${file}'.`);
  }
  if (buf.length > BUFSIZE) {
    warnings.push({
      ...where,
      keyword: '',
      message: `custom error message file '${file}' larger than ${BUFSIZE} bytes. Truncating.`,
    });
    buf = buf.subarray(0, BUFSIZE);
  }
  const bad = (why: string) => new Error(`errorfile : '${file}': invalid error message: ${why}`);
  const end = findHeadEnd(buf);
  if (end < 0) throw bad('unabled to parse headers');
  let head;
  try {
    head = parseResponseHead(buf, end);
  } catch (e) {
    throw bad((e as Error).message);
  }
  if (head.status < 200 && (head.status === 100 || head.status >= 102))
    throw bad(`invalid http status code for an error message (${head.status})`);
  if (head.chunked) throw bad('chunk-encoded payload not supported');
  const body = buf.length - end;
  if (head.contentLength >= 0 && head.contentLength !== body)
    throw bad(`payload size does not match the announced content-length (${body} != ${head.contentLength})`);
  return { code, response: buf.toString('latin1') };
}
