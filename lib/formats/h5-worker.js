/**
 * The HDF5 reader worker (started by `./h5.ts`): h5wasm (the HDF5 C library
 * compiled to WebAssembly) runs here, in a child process of its own, so that
 * a corrupt file that sends the C library into an endless loop can be
 * stopped by killing it, and so that the memory the WebAssembly module and
 * its compilation take (about 20 MB that a worker thread left resident in
 * the caller's process after it stopped) goes away with the process.
 * Requests and replies travel over the IPC channel (advanced serialization:
 * Uint8Arrays are copied as bytes). The process exits when the channel
 * closes, and a watchdog thread kills it if its parent dies while the HDF5
 * library is busy (an endless loop never returns to the event loop).
 *
 * Two requests, each on one file:
 * - `tree`: every group, attribute and dataset *description* (shape, dtype,
 *   layout), no dataset values. Links are not followed: a soft link is
 *   reported as such (a soft-link cycle costs nothing), an external link is
 *   refused, a virtual dataset is refused. Attribute values are read within
 *   a byte budget.
 * - `read`: the raw bytes of the listed datasets, within a byte budget
 *   computed from their declared shapes and element sizes before any value
 *   is read (a dataset with no storage or a huge declared shape is refused
 *   before the HDF5 library allocates it). Values are returned as raw bytes:
 *   the caller decodes float16/32/64 (h5wasm itself has no float16).
 *
 * Files outside the model are never read: the HDF5 library may open only the
 * file being read (h5wasm's NODERAWFS calls Node's `fs.openSync`, which is
 * wrapped here); external raw storage, external links and virtual dataset
 * sources all fail to open, and the request is refused naming the file the
 * HDF5 file pointed at.
 *
 * HDF5's diagnostics (its error stack on fd 2, emscripten's `Aborted(...)`,
 * `Cannot enlarge memory`) never reach the terminal: fd 2 writes are kept
 * (the last 2 KB) and attached to the error of the failing request.
 */
// Plain JavaScript: it runs as is from lib/ (tsx, vitest) and from dist/
// (tsc copies it, allowJs), with no TypeScript loader in the worker.
import fs from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';

/** @typedef {{ op: 'tree', id: number, file: string, maxNodes: number, maxAttrBytes: number }} TreeRequest */
/** @typedef {{ op: 'read', id: number, file: string, paths: string[], maxBytes: number }} ReadRequest */
/**
 * @typedef {{ type: 'Group' | 'Dataset' | 'Error' | 'Other' | 'SoftLink', path: string, attrs?: Record<string, unknown>,
 *   children?: Record<string, WorkerTreeNode>, metadata?: Record<string, unknown>, message?: string, target?: string }} WorkerTreeNode
 */

// ------------------------------------------------------------ sandbox and diagnostics

/** @type {string | null} */
let allowed = null;
/** @type {string | null} */
let refusedOpen = null;
/** Set once the model file is open. */
let opened = false;
let diagnostics = '';

const origOpenSync = fs.openSync;
fs.openSync = function openSync(p, ...rest) {
  const asked = path.resolve(String(p));
  // A path that does not exist (HDF5's compiled-in plugin directory) fails by itself; any other file is refused.
  // Once the file is open, the HDF5 library has no reason to open any existing file, the model file itself included
  // (external raw storage pointing back into the model is still external storage).
  if ((allowed === null || asked !== allowed || opened) && fs.existsSync(asked)) {
    refusedOpen ??= asked;
    const e = new Error(`EACCES: the HDF5 reader may open only the model file, not ${asked}`);
    Object.assign(e, { code: 'EACCES', errno: -13 });
    throw e;
  }
  return origOpenSync.call(fs, p, ...rest);
};

const origWriteSync = fs.writeSync;
fs.writeSync = function writeSync(fd, buf, ...rest) {
  if (fd === 2) {
    if (typeof buf === 'string') {
      diagnostics = (diagnostics + buf).slice(-2048);
      return Buffer.byteLength(buf);
    }
    // emscripten passes the whole WebAssembly heap with an offset and a length: copy only that slice.
    const off = typeof rest[0] === 'number' ? rest[0] : 0;
    const len = typeof rest[1] === 'number' ? rest[1] : buf.byteLength - off;
    const tail = Math.max(off, off + len - 2048);
    diagnostics = (diagnostics + Buffer.from(buf.buffer, buf.byteOffset + tail, off + len - tail).toString('utf8')).slice(-2048);
    return len;
  }
  return origWriteSync.call(fs, fd, buf, ...rest);
};
// emscripten's err() (Aborted(...), Cannot enlarge memory) goes through console.error.
console.error = (...args) => {
  diagnostics = (diagnostics + args.map(String).join(' ') + '\n').slice(-2048);
};
console.warn = console.error;
for (const stream of [process.stderr, process.stdout]) {
  stream.write = (chunk, ...rest) => {
    diagnostics = (diagnostics + String(chunk)).slice(-2048);
    const cb = rest.find((r) => typeof r === 'function');
    if (cb) cb();
    return true;
  };
}

// ------------------------------------------------------------ h5wasm

let h5 = null;
let Module = null;

async function load() {
  if (h5 === null) {
    const m = await import('h5wasm/node');
    await m.default.ready;
    h5 = m.default;
    Module = m.Module;
  }
  return h5;
}

const msg = (e) => String(e?.message ?? e);

function metadataOf(md) {
  const out = {};
  for (const k of ['type', 'size', 'littleEndian', 'signed', 'vlen', 'total_size', 'shape', 'maxshape', 'chunks', 'cset']) {
    if (k in md) out[k] = md[k];
  }
  if (md.virtual_sources !== undefined) out.virtual_sources = md.virtual_sources;
  return out;
}

/** Declared bytes: element size × element count. */
function bytesOf(md) {
  const size = Number(md.size);
  const n = Number(md.total_size);
  return Number.isFinite(size) && Number.isFinite(n) ? size * n : Infinity;
}

/** @param {TreeRequest} req @returns {WorkerTreeNode} */
function tree(f, req) {
  let nodes = 0;
  let attrBytes = 0;
  const count = () => {
    if (++nodes > req.maxNodes) throw new Error(`more than ${req.maxNodes} HDF5 objects`);
  };
  const attrsOf = (o, where) => {
    const out = {};
    let attrs;
    try {
      attrs = o.attrs;
    } catch (e) {
      return { __attrs_error: { __error: msg(e) } };
    }
    for (const name of Object.keys(attrs)) {
      let a;
      try {
        a = attrs[name];
      } catch (e) {
        out[name] = { __error: msg(e) };
        continue;
      }
      const n = bytesOf(a.metadata);
      attrBytes += n;
      if (!(attrBytes <= req.maxAttrBytes)) {
        throw new Error(`attribute ${name} of ${where} declares ${n} bytes: the attributes need more than the limit of ${req.maxAttrBytes} bytes`);
      }
      try {
        let value = a.value;
        if (ArrayBuffer.isView(value)) value = value.slice();
        out[name] = value;
      } catch (e) {
        out[name] = { __error: msg(e) };
      }
    }
    return out;
  };
  const walk = (g, p, depth) => {
    count();
    if (depth > 64) throw new Error('HDF5 groups nested more than 64 deep');
    /** @type {WorkerTreeNode} */
    const node = { type: 'Group', path: p, attrs: attrsOf(g, p), children: {} };
    let keys;
    try {
      keys = g.keys();
    } catch (e) {
      return { type: 'Error', path: p, message: msg(e) };
    }
    const children = node.children;
    for (const k of keys) {
      const cp = p === '/' ? `/${k}` : `${p}/${k}`;
      // Links first, without following them.
      const ext = g.get_external_link(cp);
      if (ext !== null && typeof ext === 'object' && typeof ext.filename === 'string') {
        throw new Error(`${cp} is an external link to ${ext.filename}:${ext.obj_path ?? ''}: links to other files are refused (Keras never writes them)`);
      }
      const soft = g.get_link(cp);
      if (typeof soft === 'string') {
        count();
        children[k] = { type: 'SoftLink', path: cp, target: soft };
        continue;
      }
      let child;
      try {
        child = g.get(k);
      } catch (e) {
        children[k] = { type: 'Error', path: cp, message: msg(e) };
        continue;
      }
      if (child === null || child === undefined) {
        children[k] = { type: 'Error', path: cp, message: 'cannot open' };
        continue;
      }
      if (child.type === 'Group') children[k] = walk(child, cp, depth + 1);
      else if (child.type === 'Dataset') {
        count();
        let metadata;
        try {
          metadata = metadataOf(child.metadata);
        } catch (e) {
          children[k] = { type: 'Error', path: cp, message: msg(e) };
          continue;
        }
        if (Array.isArray(metadata.virtual_sources)) {
          const src = metadata.virtual_sources[0];
          throw new Error(`dataset ${cp} is a virtual dataset (source ${src?.file_name ?? '?'}:${src?.dset_name ?? '?'}): virtual datasets are refused (Keras never writes them)`);
        }
        children[k] = { type: 'Dataset', path: cp, metadata, attrs: attrsOf(child, cp) };
      } else {
        count();
        children[k] = { type: 'Other', path: cp };
      }
    }
    return node;
  };
  return walk(f, '/', 0);
}

/** @param {ReadRequest} req */
function readValues(f, req) {
  // Budget from the declared shapes and element sizes, before reading anything.
  const metas = [];
  let total = 0;
  for (const p of req.paths) {
    const ds = f.get(p);
    if (ds === null || ds?.type !== 'Dataset') throw new Error(`${p} is not a dataset`);
    const md = ds.metadata;
    if (md.vlen === true) throw new Error(`dataset ${p} has variable-length elements, not numbers`);
    const n = bytesOf(md);
    total += n;
    if (!(total <= req.maxBytes)) {
      throw new Error(
        `dataset ${p} declares ${n} bytes (shape ${JSON.stringify(md.shape)}, ${String(md.size)}-byte elements): the weights need ${total} bytes: too large, the limit is ${req.maxBytes} bytes (raise it with the maxModelBytes option or MOBILENET_MAX_MODEL_BYTES)`,
      );
    }
    metas.push([p, md]);
  }
  const values = {};
  for (const [p, md] of metas) {
    const nbytes = bytesOf(md);
    if (md.shape === null || nbytes === 0) {
      values[p] = new Uint8Array(0);
      continue;
    }
    const ptr = Module._malloc(nbytes);
    if (ptr === 0) throw new Error(`cannot allocate ${nbytes} bytes for dataset ${p}`);
    try {
      // H5Dread's status: h5wasm does not throw when it fails (with the default error handler), and the
      // buffer then holds whatever malloc returned: a failed read must never become weights.
      const status = Module.get_dataset_data(f.file_id, p, null, null, null, BigInt(ptr));
      if (refusedOpen !== null) throw new Error('refused');
      if (typeof status !== 'number' || status < 0) throw new Error(`the HDF5 library failed to read it (status ${String(status)})`);
      const bytes = Module.HEAPU8.slice(ptr, ptr + nbytes);
      values[p] = bytes;
    } catch (e) {
      if (refusedOpen !== null) {
        throw new Error(`dataset ${p} stores its values in an external file (${refusedOpen}): external storage is refused (Keras never writes it)`);
      }
      throw new Error(`cannot read dataset ${p}: ${msg(e)}`);
    } finally {
      Module._free(ptr);
    }
  }
  return values;
}

process.on('message', (req) => {
  void (async () => {
    let f = null;
    refusedOpen = null;
    diagnostics = '';
    try {
      const lib = await load();
      allowed = path.resolve(req.file);
      f = new lib.File(req.file, 'r');
      opened = true;
      if (f.file_id === undefined || BigInt(f.file_id) < 0n) throw new Error('HDF5 library cannot open the file (corrupt or truncated HDF5)');
      if (req.op === 'tree') {
        reply({ id: req.id, tree: tree(f, req) });
      } else {
        reply({ id: req.id, values: readValues(f, req) });
      }
    } catch (e) {
      let error = msg(e);
      if (refusedOpen !== null && !/refused/.test(error)) {
        error = `it refers to another file (${refusedOpen}): external storage, external links and virtual datasets are refused (Keras never writes them)`;
      }
      reply({ id: req.id, error, diagnostics: diagnostics.trim().slice(-500) });
    } finally {
      try {
        f?.close();
      } catch {
        // nothing to release
      }
      allowed = null;
      opened = false;
    }
  })();
});

// ------------------------------------------------------------ process lifetime

/** @param {unknown} m */
function reply(m) {
  // The parent may be gone (its timeout killed the request's wait, or it exited): nothing to deliver then.
  if (process.connected) process.send?.(m);
}

// The parent closed the channel (it stopped this reader, or it exited): nothing more will come.
process.on('disconnect', () => process.exit(0));

// A watchdog on its own thread: if the parent dies while the HDF5 library loops (so that 'disconnect' is never
// handled), this process is orphaned (its parent pid changes) and kills itself.
{
  const parent = process.ppid;
  const watchdog = new Worker(
    `const { workerData } = require('node:worker_threads');
     setInterval(() => { if (process.ppid !== workerData) process.kill(process.pid, 'SIGKILL'); }, 500);`,
    { eval: true, workerData: parent, stdout: true, stderr: true },
  );
  watchdog.unref();
}
