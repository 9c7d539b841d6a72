#include "ir.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace mobilenet {

const char* OpName(Op op) {
  switch (op) {
    case Op::kConv2d:
      return "conv2d";
    case Op::kDepthwiseConv2d:
      return "depthwiseConv2d";
    case Op::kAdd:
      return "add";
    case Op::kMultiply:
      return "multiply";
    case Op::kClamp:
      return "clamp";
    case Op::kHardswish:
      return "hardswish";
    case Op::kSigmoid:
      return "sigmoid";
    case Op::kSoftmax:
      return "softmax";
    case Op::kGlobalAveragePool:
      return "globalAveragePool";
    case Op::kAveragePool2d:
      return "averagePool2d";
    case Op::kMaxPool2d:
      return "maxPool2d";
    case Op::kFullyConnected:
      return "fullyConnected";
    case Op::kPad:
      return "pad";
    case Op::kReshape:
      return "reshape";
  }
  return "?";
}

std::string NodeLabel(const GraphData& g, size_t i) {
  const NodeRecord& n = g.nodes[i];
  std::string label = "#" + std::to_string(i);
  if (!n.name.empty()) label += " '" + n.name + "'";
  return label + " (" + OpName(n.op) + ")";
}

std::string NodeId(const GraphData& g, size_t i) {
  return g.nodes[i].name.empty() ? "#" + std::to_string(i) : g.nodes[i].name;
}

std::string StatusName(xnn_status status) {
  switch (static_cast<int>(status)) {
    case 0:
      return "xnn_status_success";
    case 1:
      return "xnn_status_uninitialized";
    case 2:
      return "xnn_status_invalid_parameter";
    case 3:
      return "xnn_status_invalid_state";
    case 4:
      return "xnn_status_unsupported_parameter";
    case 5:
      return "xnn_status_unsupported_hardware";
    case 6:
      return "xnn_status_out_of_memory";
    case 7:
      return "xnn_status_reallocation_required";
    case 8:
      return "xnn_status_deprecated";
    default:
      return "xnn_status_" + std::to_string(static_cast<int>(status));
  }
}

AlignedFloats::AlignedFloats(size_t count) : size_(count) {
  size_t bytes = count * sizeof(float) + XNN_EXTRA_BYTES;
  bytes = (bytes + 63) / 64 * 64;
  data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (data_ == nullptr) throw std::bad_alloc();
  std::memset(data_, 0, bytes);
}

AlignedFloats::~AlignedFloats() { std::free(data_); }

}  // namespace mobilenet
