#include "ir.h"

#include <cstdlib>
#include <cstring>
#include <new>

namespace mobilenet {

const char* OpName(Op op) {
  uint32_t code = static_cast<uint32_t>(op);
  return code < kOpCount ? kOpSpecs[code].name : "?";
}

size_t DTypeBytes(DType dtype) {
  switch (dtype) {
    case DType::kQint8:
    case DType::kQcint8:
      return 1;
    default:
      return 4;
  }
}

std::string ShapeString(const std::vector<size_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
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

AlignedBytes::AlignedBytes(size_t bytes) : size_(bytes) {
  if (bytes > (size_t{1} << 40)) throw std::bad_alloc();
  capacity_ = (bytes + XNN_EXTRA_BYTES + 63) / 64 * 64;
  data_ = static_cast<uint8_t*>(std::aligned_alloc(64, capacity_));
  if (data_ == nullptr) throw std::bad_alloc();
  // Only the slack is zeroed: untouched pages of large buffers stay unallocated.
  std::memset(data_ + bytes, 0, capacity_ - bytes);
}

AlignedBytes::~AlignedBytes() { std::free(data_); }

}  // namespace mobilenet
