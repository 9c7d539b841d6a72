#include "format.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "ops.h"

namespace mobilenet {

namespace {

constexpr size_t kHeaderBytes = 40;
constexpr uint32_t kMaxTensors = 1u << 24;
constexpr uint32_t kMaxNodes = 1u << 20;
constexpr uint32_t kMaxNameBytes = 4096;
constexpr uint64_t kAlign = 64;

// Bounds-checked little-endian reader.
class Reader {
 public:
  Reader(const uint8_t* p, size_t size) : p_(p), size_(size) {}
  size_t offset() const { return at_; }
  size_t remaining() const { return size_ - at_; }

  void Need(size_t n, const char* what) {
    if (n > size_ - at_) {
      Fail(std::string("truncated ") + what + " (needs " + std::to_string(n) + " bytes, " +
           std::to_string(size_ - at_) + " left)");
    }
  }
  uint8_t U8(const char* what) { return static_cast<uint8_t>(Bits(1, what)); }
  uint16_t U16(const char* what) { return static_cast<uint16_t>(Bits(2, what)); }
  uint32_t U32(const char* what) { return static_cast<uint32_t>(Bits(4, what)); }
  int32_t I32(const char* what) {
    uint32_t u = U32(what);
    int32_t i;
    std::memcpy(&i, &u, 4);
    return i;
  }
  uint64_t U64(const char* what) { return Bits(8, what); }
  float F32(const char* what) {
    uint32_t u = U32(what);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  double F64(const char* what) {
    uint64_t u = U64(what);
    double d;
    std::memcpy(&d, &u, 8);
    return d;
  }
  std::string String(const char* what) {
    uint32_t n = U32(what);
    if (n > kMaxNameBytes) Fail(std::string(what) + " longer than " + std::to_string(kMaxNameBytes) + " bytes");
    Need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + at_), n);
    at_ += n;
    return s;
  }
  [[noreturn]] void Fail(const std::string& message) const {
    throw GraphFormatError("Invalid serialized graph at byte " + std::to_string(at_) + ": " + message);
  }

 private:
  uint64_t Bits(size_t n, const char* what) {
    Need(n, what);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= uint64_t{p_[at_ + i]} << (8 * i);
    at_ += n;
    return v;
  }
  const uint8_t* p_;
  size_t size_;
  size_t at_ = 0;
};

std::string DTypeName(DType d) { return kDTypeNames[static_cast<uint32_t>(d)]; }

GraphData ParseGraphImpl(const uint8_t* bytes, size_t size, std::shared_ptr<const AlignedBytes> whole) {
  Reader r(bytes, size);
  GraphData g;
  r.Need(kHeaderBytes, "header");
  if (std::memcmp(bytes, "MNXG", 4) != 0) r.Fail("not a serialized graph (magic is not MNXG)");
  for (int i = 0; i < 4; i++) r.U8("magic");
  uint32_t version = r.U32("version");
  if (version != kGraphFormatVersion) {
    r.Fail("unsupported version " + std::to_string(version) + " (this build reads " +
           std::to_string(kGraphFormatVersion) + ")");
  }
  uint32_t tensor_count = r.U32("tensor count");
  uint32_t node_count = r.U32("node count");
  g.input = r.U32("input id");
  g.output = r.U32("output id");
  uint64_t data_offset = r.U64("data offset");
  uint64_t data_bytes = r.U64("data size");
  if (tensor_count == 0 || tensor_count > kMaxTensors) r.Fail("tensor count " + std::to_string(tensor_count) + " out of range");
  if (node_count > kMaxNodes) r.Fail("node count " + std::to_string(node_count) + " out of range");
  if (data_offset % kAlign != 0 || data_offset < kHeaderBytes || data_offset > size ||
      data_bytes != size - data_offset) {
    r.Fail("data section [" + std::to_string(data_offset) + ", +" + std::to_string(data_bytes) +
           ") does not end the " + std::to_string(size) + "-byte graph");
  }
  // Every tensor record has at least 36 bytes, every node record at least 20:
  // refuse counts the records section cannot hold before allocating for them.
  if (uint64_t{tensor_count} * 36 + uint64_t{node_count} * 20 > data_offset - kHeaderBytes) {
    r.Fail("tensor and node counts larger than the records section");
  }

  // Constant data: into a copy of the data section, or (in place) the whole buffer.
  const uint8_t* data_base = nullptr;
  if (whole) {
    g.blob = std::move(whole);
    data_base = g.blob->data() + data_offset;
  } else if (data_bytes > 0) {
    auto blob = std::make_shared<AlignedBytes>(data_bytes);
    std::memcpy(blob->data(), bytes + data_offset, data_bytes);
    data_base = blob->data();
    g.blob = std::move(blob);
  }
  g.tensors.resize(tensor_count);
  for (uint32_t i = 0; i < tensor_count; i++) {
    TensorRecord& t = g.tensors[i];
    const std::string what = "tensor " + std::to_string(i);
    uint8_t dtype = r.U8("dtype");
    if (dtype >= kDTypeCount) r.Fail(what + ": unknown dtype " + std::to_string(dtype));
    t.dtype = static_cast<DType>(dtype);
    uint8_t flags = r.U8("flags");
    if (flags > 7) r.Fail(what + ": unknown flags " + std::to_string(flags));
    t.batched = (flags & 1) != 0;
    const bool has_data = (flags & 2) != 0;
    if (t.batched == has_data) r.Fail(what + ": an activation has no data, a constant has data");
    if ((flags & 4) != 0) {
      if (!t.batched || t.dtype != DType::kFloat32) {
        r.Fail(what + ": an extra output must be a float32 activation");
      }
      g.extra_outputs.push_back(i);
    }
    uint16_t rank = r.U16("rank");
    if (rank > kMaxRank + (t.batched ? 0 : 1) || (t.batched && rank == 0)) {
      r.Fail(what + ": rank " + std::to_string(rank) + " out of range");
    }
    uint64_t elements = 1;
    for (uint16_t k = 0; k < rank; k++) {
      uint32_t d = r.U32("dimension");
      if (d == 0 || d > kMaxDim) r.Fail(what + ": dimension " + std::to_string(d) + " out of range");
      elements *= d;  // < 2^24 * kMaxElements: no overflow
      if (elements > kMaxElements) r.Fail(what + ": more than " + std::to_string(kMaxElements) + " elements");
      t.shape.push_back(d);
    }
    t.zero_point = r.I32("zero point");
    t.channel_axis = r.U32("channel axis");
    uint32_t scale_count = r.U32("scale count");
    const bool per_channel = t.dtype == DType::kQcint8 || t.dtype == DType::kQcint32;
    uint32_t expected_scales = t.dtype == DType::kFloat32 ? 0
                               : per_channel ? (t.channel_axis < rank ? t.shape[t.channel_axis] : 0)
                                             : 1;
    if (per_channel && t.channel_axis >= rank) r.Fail(what + ": channel axis out of range");
    if (!per_channel && t.channel_axis != 0) r.Fail(what + ": channel axis of a per-tensor type");
    if (scale_count != expected_scales) {
      r.Fail(what + ": " + std::to_string(scale_count) + " scales for a " + DTypeName(t.dtype) +
             " tensor (expected " + std::to_string(expected_scales) + ")");
    }
    if (t.dtype == DType::kQint8 ? (t.zero_point < -128 || t.zero_point > 127) : t.zero_point != 0) {
      r.Fail(what + ": zero point " + std::to_string(t.zero_point) + " out of range for " + DTypeName(t.dtype));
    }
    r.Need(uint64_t{scale_count} * 4, "scales");
    t.scales.resize(scale_count);
    for (uint32_t k = 0; k < scale_count; k++) {
      float s = r.F32("scale");
      if (!(s > 0) || !std::isfinite(s)) r.Fail(what + ": scale must be positive and finite");
      t.scales[k] = s;
    }
    uint64_t offset = r.U64("data offset");
    uint64_t bytes_count = r.U64("data size");
    if (has_data) {
      uint64_t expected = elements * DTypeBytes(t.dtype);
      if (bytes_count != expected) {
        r.Fail(what + ": " + std::to_string(bytes_count) + " data bytes for " + std::to_string(elements) +
               " " + DTypeName(t.dtype) + " elements");
      }
      if (offset % kAlign != 0 || offset > data_bytes || bytes_count > data_bytes - offset) {
        r.Fail(what + ": data [" + std::to_string(offset) + ", +" + std::to_string(bytes_count) +
               ") outside the data section");
      }
      t.data = data_base + offset;
      t.data_bytes = bytes_count;
      g.weight_bytes += bytes_count;
    } else if (offset != 0 || bytes_count != 0) {
      r.Fail(what + ": data for an activation");
    }
    t.name = r.String("tensor name");
  }

  if (g.input >= tensor_count || !g.tensors[g.input].batched) r.Fail("input id is not an activation tensor");
  if (g.output >= tensor_count || !g.tensors[g.output].batched) r.Fail("output id is not an activation tensor");

  // Topological order: an activation is readable once produced (the input is produced).
  std::vector<bool> produced(tensor_count, false);
  produced[g.input] = true;
  g.nodes.resize(node_count);
  for (uint32_t i = 0; i < node_count; i++) {
    NodeRecord& n = g.nodes[i];
    const std::string what = "node " + std::to_string(i);
    uint32_t code = r.U32("op");
    if (code >= kOpCount) r.Fail(what + ": unknown op code " + std::to_string(code));
    n.op = static_cast<Op>(code);
    const OpSpec& spec = kOpSpecs[code];
    const std::string label = what + " (" + spec.name + ")";
    n.output = r.U32("output id");
    if (n.output >= tensor_count || !g.tensors[n.output].batched) r.Fail(label + ": output is not an activation tensor");
    if (produced[n.output]) r.Fail(label + ": output tensor " + std::to_string(n.output) + " is already produced");
    uint32_t input_count = r.U32("input count");
    const bool variadic = spec.input_count > 0 && spec.inputs[spec.input_count - 1].variadic;
    uint32_t required = 0;
    for (uint32_t k = 0; k < spec.input_count; k++) required += spec.inputs[k].optional ? 0 : 1;
    if (variadic ? (input_count < spec.input_count || input_count > 64) : input_count != spec.input_count) {
      r.Fail(label + ": " + std::to_string(input_count) + " inputs (schema: " + std::to_string(spec.input_count) + ")");
    }
    r.Need(uint64_t{input_count} * 4, "inputs");
    for (uint32_t k = 0; k < input_count; k++) {
      const InputSpec& slot = spec.inputs[k < spec.input_count ? k : spec.input_count - 1];
      uint32_t id = r.U32("input id");
      n.inputs.push_back(id);
      if (id == kNoTensor) {
        if (!slot.optional) r.Fail(label + ": input " + slot.name + " is required");
        continue;
      }
      if (id >= tensor_count) r.Fail(label + ": input " + slot.name + " refers to tensor " + std::to_string(id) + " of " + std::to_string(tensor_count));
      const TensorRecord& t = g.tensors[id];
      if (!(slot.kinds & (t.batched ? kActivation : kConstant))) {
        r.Fail(label + ": input " + slot.name + " must be " + (t.batched ? "a constant" : "an activation"));
      }
      if (t.batched && !produced[id]) r.Fail(label + ": input " + slot.name + " (tensor " + std::to_string(id) + ") is read before it is produced");
      if (!(slot.dtypes & (1u << static_cast<uint32_t>(t.dtype)))) {
        r.Fail(label + ": input " + slot.name + " has dtype " + DTypeName(t.dtype) + ", which the schema does not accept");
      }
    }
    uint32_t attr_count = r.U32("attribute count");
    if (attr_count != spec.attr_count) {
      r.Fail(label + ": " + std::to_string(attr_count) + " attributes (schema: " + std::to_string(spec.attr_count) + ")");
    }
    n.attrs.resize(attr_count);
    for (uint32_t k = 0; k < attr_count; k++) {
      const AttrSpec& a = spec.attrs[k];
      const std::string attr = label + ": attribute " + a.name;
      uint32_t count = r.U32("attribute value count");
      bool ok = a.type == AttrType::kU32List ? count <= kMaxRank
                : a.type == AttrType::kU32Array ? count == a.count
                                                : count == 1;
      if (!ok) r.Fail(attr + " has " + std::to_string(count) + " values");
      r.Need(uint64_t{count} * 8, "attribute values");
      for (uint32_t j = 0; j < count; j++) {
        double x = r.F64("attribute value");
        switch (a.type) {
          case AttrType::kU32:
          case AttrType::kU32Array:
          case AttrType::kU32List:
            if (!(x >= a.min && x <= a.max) || x != std::floor(x)) {
              r.Fail(attr + ": expected integers in [" + std::to_string(a.min) + ", " + std::to_string(a.max) + "]");
            }
            break;
          case AttrType::kF32:
            if (std::isnan(x)) r.Fail(attr + ": NaN");
            break;
          case AttrType::kF32Finite:
            if (!std::isfinite(x)) r.Fail(attr + ": not finite");
            break;
        }
        n.attrs[k].push_back(x);
      }
    }
    n.name = r.String("node name");
    std::vector<size_t> shape;
    std::string error = InferShape(g, n, &shape);
    if (!error.empty()) r.Fail(label + ": " + error);
    const TensorRecord& out = g.tensors[n.output];
    if (shape != out.shape) {
      r.Fail(label + ": output shape " + ShapeString(out.shape) + " differs from the op's rule " + ShapeString(shape));
    }
    if (!(spec.output_dtypes & (1u << static_cast<uint32_t>(out.dtype)))) {
      r.Fail(label + ": output dtype " + DTypeName(out.dtype) + " is not one the schema allows");
    }
    produced[n.output] = true;
  }
  if (!produced[g.output]) r.Fail("the output tensor is produced by no node");
  if (!g.extra_outputs.empty() && g.output == g.input) {
    r.Fail("extra outputs of a graph whose output is its input");
  }
  for (uint32_t id : g.extra_outputs) {
    if (id == g.input || id == g.output || !produced[id]) {
      r.Fail("extra output tensor " + std::to_string(id) +
             " is the input, the output, or produced by no node");
    }
  }
  if (r.offset() > data_offset) r.Fail("records run into the data section");
  return g;
}

}  // namespace

GraphData ParseGraph(const uint8_t* bytes, size_t size) { return ParseGraphImpl(bytes, size, nullptr); }

GraphData ParseGraph(std::shared_ptr<const AlignedBytes> bytes) {
  const uint8_t* data = bytes->data();
  size_t size = bytes->size();
  return ParseGraphImpl(data, size, std::move(bytes));
}

}  // namespace mobilenet
