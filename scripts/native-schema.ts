/**
 * The text of native/schema.gen.h, generated from the op schema (lib/schema.ts).
 * Used by scripts/gen-native-schema.ts (writes it) and test/schema.test.ts (checks it is current).
 */
import { DTYPES, MAX_DIM, MAX_ELEMENTS, MAX_RANK, MAX_U32_ATTR, OPS, type AttrSpec, type InputSpec, type OpName } from '../lib/schema.js';

const pascal = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);

function dtypeMask(dtypes: readonly string[]): string {
  return dtypes.map((d) => `kDType${pascal(d)}Bit`).join(' | ') || '0';
}

function attrLine(name: string, a: AttrSpec): string {
  switch (a.type) {
    case 'u32':
      return `{"${name}", AttrType::kU32, 1, ${a.min}, ${a.max ?? 'kMaxU32Attr'}}`;
    case 'u32[]':
      return `{"${name}", AttrType::kU32Array, ${a.count}, ${a.min}, kMaxU32Attr}`;
    case 'u32[*]':
      return `{"${name}", AttrType::kU32List, 0, ${a.min}, kMaxU32Attr}`;
    case 'f32':
      return `{"${name}", AttrType::kF32, 1, 0, 0}`;
    case 'f32finite':
      return `{"${name}", AttrType::kF32Finite, 1, 0, 0}`;
  }
}

function inputLine(i: InputSpec): string {
  const kinds = i.kind === 'activation' ? 'kActivation' : i.kind === 'constant' ? 'kConstant' : 'kActivation | kConstant';
  return `{"${i.name}", ${kinds}, ${dtypeMask(i.dtypes)}, ${i.optional === true}, ${i.variadic === true}}`;
}

export function generateNativeSchema(): string {
  const names = Object.keys(OPS) as OpName[];
  const byCode = [...names].sort((a, b) => OPS[a].code - OPS[b].code);
  byCode.forEach((n, i) => {
    if (OPS[n].code !== i) throw new Error(`op codes must be dense from 0: ${n} has ${OPS[n].code}, expected ${i}`);
  });
  const maxInputs = Math.max(1, ...names.map((n) => OPS[n].inputs.length));
  const maxAttrs = Math.max(1, ...names.map((n) => Object.keys(OPS[n].attrs).length));
  const L: string[] = [];
  L.push('// Generated from lib/schema.ts by scripts/gen-native-schema.ts: do not edit.');
  L.push('// The op schema as a C++ table: what native/format.cc checks every node record against.');
  L.push('#pragma once');
  L.push('');
  L.push('#include <cstdint>');
  L.push('');
  L.push('namespace mobilenet {');
  L.push('');
  L.push('enum class DType : uint8_t {');
  DTYPES.forEach((d, i) => L.push(`  k${pascal(d)} = ${i},`));
  L.push('};');
  L.push(`constexpr uint32_t kDTypeCount = ${DTYPES.length};`);
  DTYPES.forEach((d, i) => L.push(`constexpr uint32_t kDType${pascal(d)}Bit = 1u << ${i};`));
  L.push(`constexpr const char* kDTypeNames[kDTypeCount] = {${DTYPES.map((d) => `"${d}"`).join(', ')}};`);
  L.push('');
  L.push('// Largest per-sample rank; integer attribute values are at most kMaxU32Attr.');
  L.push(`constexpr uint32_t kMaxRank = ${MAX_RANK};`);
  L.push(`constexpr uint32_t kMaxU32Attr = ${MAX_U32_ATTR};`);
  L.push(`constexpr uint32_t kMaxInputs = ${maxInputs};`);
  L.push(`constexpr uint32_t kMaxAttrs = ${maxAttrs};`);
  L.push('// Largest single dimension and element count of one tensor (MAX_DIM, MAX_ELEMENTS).');
  L.push(`constexpr uint32_t kMaxDim = ${MAX_DIM}u;`);
  L.push(`constexpr uint64_t kMaxElements = ${MAX_ELEMENTS}u;`);
  L.push('');
  L.push('enum class Op : uint32_t {');
  for (const n of byCode) L.push(`  k${pascal(n)} = ${OPS[n].code},`);
  L.push('};');
  L.push(`constexpr uint32_t kOpCount = ${names.length};`);
  L.push('');
  L.push('enum class AttrType : uint8_t { kU32, kU32Array, kU32List, kF32, kF32Finite };');
  L.push('enum InputKind : uint8_t { kActivation = 1, kConstant = 2 };');
  L.push('');
  L.push('struct InputSpec {');
  L.push('  const char* name;');
  L.push('  uint8_t kinds;    // InputKind bits');
  L.push('  uint32_t dtypes;  // kDType*Bit');
  L.push('  bool optional;');
  L.push('  bool variadic;');
  L.push('};');
  L.push('struct AttrSpec {');
  L.push('  const char* name;');
  L.push('  AttrType type;');
  L.push('  uint32_t count;  // values (kU32Array: exactly; kU32List: any up to kMaxRank)');
  L.push('  uint32_t min;    // integer types');
  L.push('  uint32_t max;');
  L.push('};');
  L.push('struct OpSpec {');
  L.push('  const char* name;');
  L.push('  uint32_t input_count;');
  L.push('  InputSpec inputs[kMaxInputs];');
  L.push('  uint32_t attr_count;');
  L.push('  AttrSpec attrs[kMaxAttrs];');
  L.push('  uint32_t output_dtypes;');
  L.push('};');
  L.push('');
  L.push('// Indexed by op code.');
  L.push('inline constexpr OpSpec kOpSpecs[kOpCount] = {');
  for (const n of byCode) {
    const s = OPS[n];
    const attrs = Object.entries(s.attrs as Record<string, AttrSpec>);
    L.push(`    {"${n}",`);
    L.push(`     ${s.inputs.length},`);
    L.push(`     {${s.inputs.map(inputLine).join(', ')}},`);
    L.push(`     ${attrs.length},`);
    L.push(`     {${attrs.map(([k, a]) => attrLine(k, a)).join(',\n      ')}},`);
    L.push(`     ${dtypeMask((s as { outputDtypes?: readonly string[] }).outputDtypes ?? ['float32'])}},`);
  }
  L.push('};');
  L.push('');
  L.push('// Input slots and attribute indices by op, for native/ops.cc: schema::conv2d::kInFilter, schema::conv2d::kStride.');
  L.push('namespace schema {');
  for (const n of byCode) {
    const s = OPS[n];
    const attrs = Object.keys(s.attrs);
    L.push(`namespace ${n} {`);
    s.inputs.forEach((i, k) => L.push(`constexpr uint32_t kIn${pascal(i.name)} = ${k};`));
    attrs.forEach((a, k) => L.push(`constexpr uint32_t k${pascal(a)} = ${k};`));
    L.push(`}  // namespace ${n}`);
  }
  L.push('}  // namespace schema');
  L.push('');
  L.push('}  // namespace mobilenet');
  L.push('');
  return L.join('\n');
}
