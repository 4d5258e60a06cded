// Run a Python script on real MicroPython (the WebAssembly port) under Node.
//   node tools/mpy-node/run.mjs [--mount HOSTDIR:/mp/dir]... [--path /mp/dir]... [--heap BYTES] SCRIPT.py
// Host folders are copied into MicroPython's in-memory file system; --path entries go first on
// sys.path. Exit status: 0 when the script ran to the end, 1 when it raised (traceback on stderr).
// --net: real TCP for the script (globalThis.segelNet, synchronous: a worker thread owns the
// sockets while MicroPython waits on Atomics), used by tests/firmware/mp/netsocket.py.
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const mounts = [];
const paths = [];
let heap = 2 * 1024 * 1024;
let script = null;
let netOn = false;
while (args.length) {
  const a = args.shift();
  if (a === "--mount") mounts.push(args.shift());
  else if (a === "--path") paths.push(args.shift());
  else if (a === "--heap") heap = parseInt(args.shift(), 10);
  else if (a === "--net") netOn = true;
  else script = a;
}
if (!script) {
  console.error("usage: run.mjs [--mount HOST:/mp]... [--path /mp]... [--heap N] SCRIPT.py");
  process.exit(2);
}

let netWorker = null;
if (netOn) {
  const { Worker } = await import("node:worker_threads");
  const ctrlBuf = new SharedArrayBuffer(12);
  const dataBuf = new SharedArrayBuffer(64 * 1024);
  const ctrl = new Int32Array(ctrlBuf);
  const data = new Uint8Array(dataBuf);
  netWorker = new Worker(new URL("./net-worker.mjs", import.meta.url), { workerData: { ctrl: ctrlBuf, data: dataBuf } });
  const call = (msg, waitMs) => {
    Atomics.store(ctrl, 0, 1);
    netWorker.postMessage(msg);
    while (Atomics.load(ctrl, 0) === 1) {
      if (Atomics.wait(ctrl, 0, 1, waitMs + 5000) === "timed-out") return -116;
    }
    Atomics.store(ctrl, 0, 0);
    return Atomics.load(ctrl, 1);
  };
  const hex = (n) => Buffer.from(data.subarray(0, n)).toString("hex");
  globalThis.segelNet = {
    connect: (host, port, timeoutMs) => call({ op: "connect", host, port, timeout: timeoutMs }, timeoutMs),
    send: (id, hx) => { const b = Buffer.from(hx, "hex"); data.set(b); return call({ op: "send", id, len: b.length }, 10000); },
    recv: (id, max, timeoutMs) => {
      const r = call({ op: "recv", id, max, timeout: timeoutMs }, timeoutMs);
      return r >= 0 ? hex(Atomics.load(ctrl, 2)) : r;
    },
    close: (id) => call({ op: "close", id }, 1000),
  };
}

const mp = await loadMicroPython({
  heapsize: heap,
  stdout: (line) => process.stdout.write(line + "\n"),
  stderr: (line) => process.stderr.write(line + "\n"),
});

function mkdirs(p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

function copyTree(host, target) {
  mkdirs(target);
  for (const ent of fs.readdirSync(host, { withFileTypes: true })) {
    if (ent.name === "__pycache__" || ent.name === "node_modules" || ent.name.startsWith(".")) continue;
    const h = path.join(host, ent.name);
    const t = target + "/" + ent.name;
    if (ent.isDirectory()) copyTree(h, t);
    else mp.FS.writeFile(t, fs.readFileSync(h));
  }
}

for (const m of mounts) {
  const i = m.lastIndexOf(":");
  copyTree(m.slice(0, i), m.slice(i + 1));
}

const prelude = "import sys\n" + paths.map((p) => `sys.path.insert(0, ${JSON.stringify(p)})\n`).join("");
try {
  mp.runPython(prelude);
  mp.runPython(fs.readFileSync(script, "utf8"));
} catch (e) {
  process.stderr.write(String(e && e.message ? e.message : e) + "\n");
  process.exit(1);
}
if (netWorker) await netWorker.terminate();
