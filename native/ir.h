// The recorded graph, independent of Node-API: what native/format.cc parses
// from the serialized graph (lib/graph-format.ts), what the addon and the raw
// runner (bench/native/runner.cc) share, and what native/subgraph.cc lowers to
// XNNPACK. Ops, input slots and attributes come from the op schema
// (native/schema.gen.h, generated from lib/schema.ts).
#pragma once

#include <xnnpack.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "schema.gen.h"

namespace mobilenet {

const char* OpName(Op op);

// Absent optional input.
constexpr uint32_t kNoTensor = 0xffffffffu;

// kMaxDim and kMaxElements (2^24; 2^31 - 1, 8 GiB of floats) come from lib/schema.ts via schema.gen.h.

// 64-byte aligned bytes with XNN_EXTRA_BYTES of readable slack.
struct AlignedBytes {
  AlignedBytes() = default;
  explicit AlignedBytes(size_t bytes);  // contents undefined, slack zeroed; throws std::bad_alloc
  ~AlignedBytes();
  AlignedBytes(const AlignedBytes&) = delete;
  AlignedBytes& operator=(const AlignedBytes&) = delete;
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Allocated bytes (with slack), for memory accounting.
  size_t capacity() const { return capacity_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// Float view of aligned storage (runtime input/output buffers).
struct AlignedFloats {
  explicit AlignedFloats(size_t count) : bytes_(count * sizeof(float)), count_(count) {}
  float* data() const { return reinterpret_cast<float*>(bytes_.data()); }
  size_t size() const { return count_; }
  size_t bytes() const { return bytes_.capacity(); }

 private:
  AlignedBytes bytes_;
  size_t count_;
};

size_t DTypeBytes(DType dtype);

struct TensorRecord {
  DType dtype = DType::kFloat32;
  bool batched = true;
  std::vector<size_t> shape;  // per-sample shape (batched) or whole shape (constant)
  int32_t zero_point = 0;
  uint32_t channel_axis = 0;
  std::vector<float> scales;       // quantized types: 1 (per tensor) or shape[channel_axis]
  const uint8_t* data = nullptr;   // constants: into GraphData::blob
  size_t data_bytes = 0;
  std::string name;
};

struct NodeRecord {
  Op op = Op::kClamp;
  std::string name;
  std::vector<uint32_t> inputs;  // kNoTensor: absent optional input
  uint32_t output = 0;
  std::vector<std::vector<double>> attrs;  // in schema order, values checked against the schema

  bool Has(uint32_t slot) const { return slot < inputs.size() && inputs[slot] != kNoTensor; }
  uint32_t U32(uint32_t attr, size_t k = 0) const { return static_cast<uint32_t>(attrs[attr][k]); }
  float F32(uint32_t attr) const { return static_cast<float>(attrs[attr][0]); }
  std::vector<size_t> Sizes(uint32_t attr) const {
    return std::vector<size_t>(attrs[attr].begin(), attrs[attr].end());
  }
};

// The recorded graph. Constant data lives in one aligned blob, shared with
// compiled runtimes (XNNPACK reads unpacked static data while it runs).
struct GraphData {
  std::vector<TensorRecord> tensors;
  std::vector<NodeRecord> nodes;
  uint32_t input = 0;
  uint32_t output = 0;
  // Activations also returned, after the output (tensor flag bit 2), in id order.
  std::vector<uint32_t> extra_outputs;
  std::shared_ptr<const AlignedBytes> blob;
  size_t weight_bytes = 0;
};

// Label of node i for error messages: "#3 'conv_pw_1' (conv2d)".
std::string NodeLabel(const GraphData& g, size_t i);
// The node's name, or "#3" when it has none (the `node` of XNNPACK errors).
std::string NodeId(const GraphData& g, size_t i);

std::string ShapeString(const std::vector<size_t>& s);

// Name of an xnn_status ("xnn_status_invalid_parameter").
std::string StatusName(xnn_status status);

}  // namespace mobilenet
