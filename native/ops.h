// Per-op C++ of the schema (lib/schema.ts): for every op, its output-shape
// check (the same rule as the schema's `infer`, used by native/format.cc to
// verify the shapes the TypeScript side serialized) and its XNNPACK define
// call (used by native/subgraph.cc). One table indexed by op code;
// adding an op to the schema without an entry here does not compile.
#pragma once

#include <xnnpack.h>

#include <string>
#include <vector>

#include "ir.h"

// int8 operators only the newer (vendored, pinned) XNNPACK has; Debian 12's 2022
// libxnnpack-dev lacks them. XNN_FLAG_KEEP_DIMS marks the newer header.
#if defined(XNN_FLAG_KEEP_DIMS)
#define MOBILENET_HAVE_QS8_HARDSWISH 1
#define MOBILENET_HAVE_QS8_FULLY_CONNECTED 1
#else
#define MOBILENET_HAVE_QS8_HARDSWISH 0
#define MOBILENET_HAVE_QS8_FULLY_CONNECTED 0
#endif

namespace mobilenet {

// What a define call needs from the subgraph under construction.
class DefineContext {
 public:
  virtual ~DefineContext() = default;
  virtual xnn_subgraph_t subgraph() = 0;
  virtual uint32_t batch() const = 0;
  virtual const GraphData& graph() const = 0;
  // The XNNPACK value of a tensor: an activation as [N, ...shape], a constant as its shape.
  virtual xnn_status Value(uint32_t tensor, uint32_t* id) = 0;
  // An operand of a broadcasting op at `rank` dimensions (batch included):
  // constants left-padded with 1s, lower-rank activations reshaped to [N, 1, ..., shape].
  virtual xnn_status Operand(uint32_t tensor, size_t rank, uint32_t* id) = 0;
};

// The node's per-sample output shape by the op's rule, or an error message
// (inputs, dtypes and attribute ranges are already checked against the schema).
std::string InferShape(const GraphData& g, const NodeRecord& n, std::vector<size_t>* shape);

// Defines the node; on failure returns the status and sets *what to the call that failed.
xnn_status DefineNode(DefineContext& c, const NodeRecord& n, const char** what);

}  // namespace mobilenet
