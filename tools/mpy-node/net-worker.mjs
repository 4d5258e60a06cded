// The TCP side of run.mjs --net: owns the sockets; the MicroPython thread waits (Atomics.wait)
// while this worker does each request and writes the answer into the shared buffers.
import { parentPort, workerData } from "node:worker_threads";
import net from "node:net";

const ctrl = new Int32Array(workerData.ctrl); // [0] state 0 idle, 1 busy, 2 done; [1] result; [2] data length
const data = new Uint8Array(workerData.data);
const socks = new Map();
let nextId = 1;

function done(result, bytes) {
  let n = 0;
  if (bytes) {
    n = Math.min(bytes.length, data.length);
    data.set(bytes.subarray(0, n));
  }
  Atomics.store(ctrl, 1, result);
  Atomics.store(ctrl, 2, n);
  Atomics.store(ctrl, 0, 2);
  Atomics.notify(ctrl, 0);
}

function take(s, max) {
  const n = Math.min(max, s.buf.length);
  const out = s.buf.subarray(0, n);
  s.buf = s.buf.subarray(n);
  return out;
}

parentPort.on("message", (m) => {
  if (m.op === "connect") {
    const sock = new net.Socket();
    const s = { sock, buf: Buffer.alloc(0), eof: false, waiter: null };
    let settled = false;
    const timer = setTimeout(() => { if (!settled) { settled = true; sock.destroy(); done(-116); } }, m.timeout);
    sock.on("data", (d) => {
      s.buf = Buffer.concat([s.buf, d]);
      if (s.waiter) s.waiter();
    });
    sock.on("end", () => { s.eof = true; if (s.waiter) s.waiter(); });
    sock.on("error", (e) => {
      s.eof = true;
      if (!settled) { settled = true; clearTimeout(timer); done(e.code === "ECONNREFUSED" ? -111 : -5); }
      else if (s.waiter) s.waiter();
    });
    sock.connect(m.port, m.host, () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const id = nextId++;
      socks.set(id, s);
      done(id);
    });
  } else if (m.op === "send") {
    const s = socks.get(m.id);
    if (!s || s.eof) return done(-32);
    const b = Buffer.from(data.subarray(0, m.len));
    s.sock.write(b, () => done(b.length));
  } else if (m.op === "recv") {
    const s = socks.get(m.id);
    if (!s) return done(-9);
    if (s.buf.length || s.eof || m.timeout === 0) {
      if (!s.buf.length && !s.eof) return done(-11); // EAGAIN: nothing yet (non-blocking)
      return done(s.buf.length, take(s, m.max));
    }
    const timer = setTimeout(() => { s.waiter = null; done(-116); }, m.timeout);
    s.waiter = () => { clearTimeout(timer); s.waiter = null; done(s.buf.length, take(s, m.max)); };
  } else if (m.op === "close") {
    const s = socks.get(m.id);
    if (s) { s.sock.destroy(); socks.delete(m.id); }
    done(0);
  }
});
