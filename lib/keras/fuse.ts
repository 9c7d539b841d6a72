/**
 * Fusion of lowered nodes (`./nodes.ts`), in passes over the nodes in
 * topological order until a pass changes nothing (a chain settles in one
 * pass plus the confirming one). Each node's consumers are kept in a map
 * updated by every rewrite, so a pass is linear in nodes + edges (it used to
 * rescan every node per rewrite: quadratic, 10k layers took minutes).
 *
 * - `Multiply([x, relu6(x + 3) / 6])` (Keras 2 hard-swish) → hardswish(x), first;
 * - affine after a conv/depthwise/dense it alone consumes → folded into the
 *   weights and bias (BatchNormalization folding). When the producer already
 *   has a clamp [lo, hi] this is only done for one positive scale s and one
 *   shift t (then the clamp becomes [lo*s+t, hi*s+t]: exact in real
 *   arithmetic); this is how hard-sigmoid `relu6(x + 3) / 6` after a conv
 *   (squeeze-excite) becomes one conv with clamp [0, 1];
 * - clamp after a conv/depthwise/dense/add/multiply/affine/clamp it alone
 *   consumes → fused as outputMin/outputMax;
 * - pad feeding only a conv/depthwise → added to that conv's padding;
 * - reshape of a reshape → one reshape; a reshape to the same shape → nothing.
 */
import { isUnbounded, type LAffine, type LBinary, type LClamp, type LConv, type LNode } from './nodes.js';
import { runSteps, type Steps } from '../cooperative.js';

export interface FuseCounts {
  foldedAffine: number;
  fusedClamps: number;
  fusedPads: number;
  hardswish: number;
  /** Passes over the nodes (the last one changes nothing). */
  fusionPasses: number;
  /** Node visits plus consumer-edge updates: the fusion's work, linear in nodes + edges. */
  fusionWork: number;
}

/** Consumers of each node, with how many of their inputs it is. */
type Users = Map<LNode, Map<LNode, number>>;

class Fuser {
  readonly counts: FuseCounts = { foldedAffine: 0, fusedClamps: 0, fusedPads: 0, hardswish: 0, fusionPasses: 0, fusionWork: 0 };
  private users: Users = new Map();

  constructor(
    private readonly nodes: readonly LNode[],
    public output: LNode,
  ) {
    this.indexUsers();
  }

  private indexUsers(): void {
    this.users = new Map();
    for (const n of this.nodes) if (!n.dead) this.users.set(n, new Map());
    for (const n of this.nodes) {
      if (n.dead) continue;
      for (const i of n.inputs) this.link(i, n, 1);
    }
  }

  private link(from: LNode, to: LNode, count: number): void {
    let u = this.users.get(from);
    if (u === undefined) this.users.set(from, (u = new Map()));
    u.set(to, (u.get(to) ?? 0) + count);
    this.counts.fusionWork++;
  }

  /** `n`'s only consumer, when it has exactly one that reads it once and `n` is not the graph output. */
  private soleConsumer(n: LNode): LNode | null {
    if (n === this.output) return null;
    const u = this.users.get(n);
    if (u === undefined || u.size !== 1) return null;
    const [only, count] = u.entries().next().value as [LNode, number];
    return count === 1 ? only : null;
  }

  /** Removes `gone` (whose single input is `keep`): its consumers read `keep`. */
  private bypass(gone: LNode, keep: LNode): void {
    gone.dead = true;
    this.users.get(keep)?.delete(gone);
    for (const [m, count] of this.users.get(gone) ?? []) {
      m.inputs = m.inputs.map((i) => (i === gone ? keep : i));
      this.link(keep, m, count);
    }
    this.users.delete(gone);
    if (this.output === gone) this.output = keep;
    keep.shape = gone.shape;
  }

  /** `n` (a one-input node) reads `to` instead of `from`, which dies. */
  private skip(n: LNode, from: LNode, to: LNode): void {
    from.dead = true;
    this.users.delete(from);
    n.inputs = n.inputs.map((i) => (i === from ? to : i));
    const u = this.users.get(to);
    u?.delete(from);
    this.link(to, n, 1);
  }

  private foldAffineInto(conv: LConv, a: LAffine): boolean {
    const C = conv.outChannels;
    const scale = a.scale;
    const shift = a.shift;
    if ((scale && scale.length !== 1 && scale.length !== C) || (shift && shift.length !== 1 && shift.length !== C)) return false;
    if (!isUnbounded(a)) return false;
    const s = (o: number): number => (scale === null ? 1 : (scale[scale.length === 1 ? 0 : o] as number));
    const t = (o: number): number => (shift === null ? 0 : (shift[shift.length === 1 ? 0 : o] as number));
    let min = conv.min;
    let max = conv.max;
    if (!isUnbounded(conv)) {
      // clamp(y, lo, hi) * s + t = clamp(y * s + t, lo * s + t, hi * s + t) only for one s > 0 and one t.
      if ((scale && scale.length !== 1) || (shift && shift.length !== 1) || !(s(0) > 0)) return false;
      min = min * s(0) + t(0);
      max = max * s(0) + t(0);
      if (!(min < max)) return false;
    }
    const f = conv.filter;
    if (scale !== null) {
      if (conv.kind === 'dw') {
        for (let i = 0; i < f.length; i++) f[i] = (f[i] as number) * s(i % C);
      } else {
        const per = f.length / C; // conv OHWI and fc [out,in]: output channel first
        for (let o = 0; o < C; o++) {
          const so = s(o);
          for (let j = 0; j < per; j++) f[o * per + j] = (f[o * per + j] as number) * so;
        }
      }
    }
    const bias = new Float32Array(C);
    for (let o = 0; o < C; o++) bias[o] = (conv.bias ? (conv.bias[o] as number) : 0) * s(o) + t(o);
    conv.bias = bias;
    conv.min = min;
    conv.max = max;
    return true;
  }

  /** Keras 2 hard-swish: multiply(x, affine(1/6)(clamp[0,6](affine(+3)(x)))); returns x. */
  private matchHardSwish(m: LBinary): LNode | null {
    if (m.kind !== 'multiply' || !isUnbounded(m)) return null;
    for (const [xi, hi] of [[0, 1], [1, 0]] as const) {
      const x = m.inputs[xi] as LNode;
      const h = m.inputs[hi] as LNode;
      if (h.kind !== 'affine' || !isUnbounded(h) || h.shift !== null || h.scale?.length !== 1) continue;
      if (Math.abs((h.scale[0] as number) - 1 / 6) > 1e-7) continue;
      const r = h.inputs[0] as LNode;
      if (r.kind !== 'clamp' || r.min !== 0 || r.max !== 6) continue;
      const p = r.inputs[0] as LNode;
      if (p.kind !== 'affine' || !isUnbounded(p) || p.scale !== null || p.shift?.length !== 1 || p.shift[0] !== 3) continue;
      if (p.inputs[0] !== x) continue;
      if (this.soleConsumer(h) !== m || this.soleConsumer(r) !== h || this.soleConsumer(p) !== r) continue;
      return x;
    }
    return null;
  }

  hardSwish(): void {
    let found = false;
    for (const n of this.nodes) {
      this.counts.fusionWork++;
      if (n.dead || n.kind !== 'multiply') continue;
      const hx = this.matchHardSwish(n);
      if (hx === null) continue;
      const h = n.inputs.find((i) => i !== hx) as LAffine;
      const r = h.inputs[0] as LClamp;
      const p = r.inputs[0] as LAffine;
      h.dead = r.dead = p.dead = true;
      // The multiply node becomes the hardswish node.
      const hs = n as unknown as { kind: string; inputs: LNode[] };
      hs.kind = 'hardswish';
      hs.inputs = [hx];
      this.counts.hardswish++;
      found = true;
    }
    if (found) this.indexUsers();
  }

  /** One pass in topological order (in steps: yields after each node); whether it changed anything. */
  *pass(): Steps<boolean> {
    let changed = false;
    this.counts.fusionPasses++;
    for (const n of this.nodes) {
      this.counts.fusionWork++;
      if (n.dead) continue;
      const x = n.inputs[0];
      if (x === undefined) continue;
      if (n.kind === 'affine' && (x.kind === 'conv' || x.kind === 'dw' || x.kind === 'fc') && this.soleConsumer(x) === n && this.foldAffineInto(x, n)) {
        this.bypass(n, x);
        this.counts.foldedAffine++;
        changed = true;
      } else if (
        n.kind === 'clamp' &&
        (x.kind === 'conv' || x.kind === 'dw' || x.kind === 'fc' || x.kind === 'add' || x.kind === 'multiply' || x.kind === 'affine' || x.kind === 'clamp') &&
        this.soleConsumer(x) === n &&
        Math.max(x.min, n.min) < Math.min(x.max, n.max)
      ) {
        x.min = Math.max(x.min, n.min);
        x.max = Math.min(x.max, n.max);
        this.bypass(n, x);
        this.counts.fusedClamps++;
        changed = true;
      } else if (n.kind === 'reshape' && x.kind === 'reshape' && this.soleConsumer(x) === n) {
        // reshape(reshape(y)) = reshape(y)
        this.skip(n, x, x.inputs[0] as LNode);
        changed = true;
      } else if (n.kind === 'reshape' && x.kind !== 'input' && n.shape.length === x.shape.length && n.shape.every((d, i) => d === x.shape[i])) {
        this.bypass(n, x);
        changed = true;
      } else if ((n.kind === 'conv' || n.kind === 'dw') && x.kind === 'pad' && this.soleConsumer(x) === n) {
        const [t, b, l, r] = x.pads;
        n.padding = [n.padding[0] + t, n.padding[1] + r, n.padding[2] + b, n.padding[3] + l];
        this.skip(n, x, x.inputs[0] as LNode);
        this.counts.fusedPads++;
        changed = true;
      }
      yield;
    }
    return changed;
  }
}

/** Fuses `nodes` in place (fused-away nodes are marked dead); returns the (possibly new) output node and the counts. */
export function fuseNodes(nodes: readonly LNode[], output: LNode): { output: LNode; counts: FuseCounts } {
  return runSteps(fuseNodesSteps(nodes, output));
}

/** `fuseNodes` in steps (lib/cooperative.ts). */
export function* fuseNodesSteps(nodes: readonly LNode[], output: LNode): Steps<{ output: LNode; counts: FuseCounts }> {
  const f = new Fuser(nodes, output);
  // Hard-swish first: the later rewrites would otherwise merge its chain.
  f.hardSwish();
  yield;
  while (yield* f.pass()) {
    // until a pass changes nothing
  }
  return { output: f.output, counts: f.counts };
}
