// Lowering of a recorded graph (native/ir.h) to an XNNPACK subgraph and
// runtime, independent of Node-API: used by the addon (native/runtime.cc) and
// by the raw C++ benchmark runner (bench/native/runner.cc), so both run the
// same xnn_define_* calls, flags and thread-pool policy.
#pragma once

#include <pthreadpool.h>
#include <xnnpack.h>

#include <memory>
#include <string>
#include <vector>

#include "ir.h"

namespace mobilenet {

struct PoolDeleter {
  void operator()(pthreadpool_t pool) const { pthreadpool_destroy(pool); }
};
struct RuntimeDeleter {
  void operator()(xnn_runtime_t runtime) const { xnn_delete_runtime(runtime); }
};

struct CompiledModel {
  // Static data the runtime may read while it runs (constants, weights).
  std::shared_ptr<const AlignedBytes> blob;
  // Declared before `runtime`: destroyed after it.
  std::unique_ptr<pthreadpool, PoolDeleter> pool;
  std::unique_ptr<xnn_runtime, RuntimeDeleter> runtime;
  std::unique_ptr<AlignedFloats> input;
  // The output, then each extra output (GraphData::extra_outputs), [batch, ...shape] each.
  std::unique_ptr<AlignedFloats> output;
  std::vector<size_t> input_shape;   // with the batch
  std::vector<size_t> output_shape;  // with the batch
  uint32_t batch = 1;
  uint32_t threads = 1;
  size_t weight_bytes = 0;

  // Bytes reported to V8 as external memory.
  int64_t ExternalBytes() const;
};

struct CompileError {
  xnn_status status = xnn_status_success;
  std::string message;  // without the status
  std::string node;     // the failing node's name or "#i", empty when not known
};

// Builds the XNNPACK subgraph of `graph` for `batch` (prepended to batched
// tensors), creates its runtime with its own pthreadpool (threads == 1: none;
// weights are packed here) and sets it up once with preallocated buffers.
// `runtime_flags` go to xnn_create_runtime_v2. Returns null and fills `error`
// on failure.
std::unique_ptr<CompiledModel> BuildModel(const GraphData& graph, uint32_t batch, uint32_t threads,
                                          uint32_t runtime_flags, CompileError* error);

}  // namespace mobilenet
