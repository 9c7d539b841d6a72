// The recorded graph, independent of Node-API: what native/graph.cc records
// from JS and bench/native/runner.cc reads from a graph file, and what
// native/subgraph.cc lowers to XNNPACK.
#pragma once

#include <xnnpack.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mobilenet {

enum class Op {
  kConv2d,
  kDepthwiseConv2d,
  kAdd,
  kMultiply,
  kClamp,
  kHardswish,
  kSigmoid,
  kSoftmax,
  kGlobalAveragePool,
  kAveragePool2d,
  kMaxPool2d,
  kFullyConnected,
  kPad,
  kReshape,
};

const char* OpName(Op op);

using FloatBuffer = std::shared_ptr<const std::vector<float>>;

struct TensorRecord {
  std::vector<size_t> shape;  // per-sample shape (batched) or whole shape (constant)
  bool batched = true;
  FloatBuffer data;  // constants only
};

struct NodeRecord {
  Op op = Op::kClamp;
  std::string name;
  uint32_t input = 0;
  uint32_t input2 = 0;  // second operand of add/multiply
  uint32_t output = 0;
  FloatBuffer filter;
  FloatBuffer bias;
  uint32_t kernel[2] = {1, 1};  // also the pool size
  uint32_t stride[2] = {1, 1};
  uint32_t dilation[2] = {1, 1};
  uint32_t padding[4] = {0, 0, 0, 0};  // top, right, bottom, left
  uint32_t groups = 1;
  size_t group_input_channels = 0;
  size_t group_output_channels = 0;
  uint32_t depth_multiplier = 1;
  size_t input_channels = 0;
  size_t output_channels = 0;
  float output_min = 0;
  float output_max = 0;
  std::vector<size_t> pre_padding;
  std::vector<size_t> post_padding;
  float pad_value = 0;
  std::vector<size_t> new_shape;
};

// The recorded graph. Weight buffers are shared with compiled runtimes.
struct GraphData {
  std::vector<TensorRecord> tensors;
  std::vector<NodeRecord> nodes;
  int64_t input = -1;
  int64_t output = -1;
  size_t weight_bytes = 0;
};

// Label of node i for error messages: "#3 'conv_pw_1' (conv2d)".
std::string NodeLabel(const GraphData& g, size_t i);
// The node's name, or "#3" when it has none (the `node` of XNNPACK errors).
std::string NodeId(const GraphData& g, size_t i);

// Name of an xnn_status ("xnn_status_invalid_parameter").
std::string StatusName(xnn_status status);

// 64-byte aligned float storage with XNN_EXTRA_BYTES of readable slack.
struct AlignedFloats {
  AlignedFloats() = default;
  explicit AlignedFloats(size_t count);
  ~AlignedFloats();
  AlignedFloats(const AlignedFloats&) = delete;
  AlignedFloats& operator=(const AlignedFloats&) = delete;
  float* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(float) + XNN_EXTRA_BYTES; }

 private:
  float* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace mobilenet
