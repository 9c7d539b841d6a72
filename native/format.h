// The one reader of the serialized graph (lib/graph-format.ts; layout in
// native/README.md), shared by the addon and the raw runner. It checks every
// field defensively (bounds, sizes, tensor ids, byte counts, overflow,
// attribute types and ranges from the schema table, each node's output shape
// by the op's rule in native/ops.cc) and throws GraphFormatError, never
// reads out of bounds.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "ir.h"

namespace mobilenet {

constexpr uint32_t kGraphFormatVersion = 2;

class GraphFormatError : public std::runtime_error {
 public:
  explicit GraphFormatError(const std::string& message) : std::runtime_error(message) {}
};

// Parses `size` bytes (copies the constant data into one aligned blob).
GraphData ParseGraph(const uint8_t* bytes, size_t size);
// The same in place: the whole serialized graph `bytes` (which no one may
// change any more) becomes the graph's blob, nothing is copied.
GraphData ParseGraph(std::shared_ptr<const AlignedBytes> bytes);

}  // namespace mobilenet
