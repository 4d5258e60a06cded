// Run a Python script on real MicroPython (the WebAssembly port) under Node.
//   node tools/mpy-node/run.mjs [--mount HOSTDIR:/mp/dir]... [--path /mp/dir]... [--heap BYTES] SCRIPT.py
// Host folders are copied into MicroPython's in-memory file system; --path entries go first on
// sys.path. Exit status: 0 when the script ran to the end, 1 when it raised (traceback on stderr).
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
import fs from "node:fs";
import path from "node:path";

const args = process.argv.slice(2);
const mounts = [];
const paths = [];
let heap = 2 * 1024 * 1024;
let script = null;
while (args.length) {
  const a = args.shift();
  if (a === "--mount") mounts.push(args.shift());
  else if (a === "--path") paths.push(args.shift());
  else if (a === "--heap") heap = parseInt(args.shift(), 10);
  else script = a;
}
if (!script) {
  console.error("usage: run.mjs [--mount HOST:/mp]... [--path /mp]... [--heap N] SCRIPT.py");
  process.exit(2);
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
