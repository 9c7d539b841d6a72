// Graph: a serialized graph (lib/graph-format.ts) parsed by the Node-free
// core (native/format.cc) and kept for compiling: `compile(batch, threads)`
// on the calling thread, `compileAsync(batch, threads)` off the event loop
// (weight packing and runtime creation on a libuv worker thread). Malformed
// bytes throw an Error with code 'ERR_GRAPH_FORMAT', never crash.
//
// Written in pieces (no copy of the whole graph in JS memory, no long stall):
// `new Graph(size)` reserves native memory, `write(offset, bytes)` copies
// pieces into it on the JS thread, `finish()` parses it in place; until then
// the graph cannot be compiled.
#pragma once

#include <napi.h>

#include <memory>

#include "common.h"
#include "ir.h"

namespace mobilenet {

class Graph : public Napi::ObjectWrap<Graph> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Graph(const Napi::CallbackInfo& info);
  ~Graph() override;

  MOBILENET_GUARDED_METHODS(Graph)

 private:
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Finish(const Napi::CallbackInfo& info);
  Napi::Value Compile(const Napi::CallbackInfo& info);
  Napi::Value CompileAsync(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetTensorCount(const Napi::CallbackInfo& info);
  Napi::Value GetNodeCount(const Napi::CallbackInfo& info);
  Napi::Value GetWeightBytes(const Napi::CallbackInfo& info);
  Napi::Value GetInputShape(const Napi::CallbackInfo& info);
  Napi::Value GetOutputShape(const Napi::CallbackInfo& info);

  const std::shared_ptr<const GraphData>& Live(Napi::Env env);
  void Release();

  // Shared with compiles in flight (they keep it alive past dispose()).
  std::shared_ptr<const GraphData> data_;
  // The bytes being written (between new Graph(size) and finish()).
  std::shared_ptr<AlignedBytes> pending_;
  int64_t external_bytes_ = 0;
};

}  // namespace mobilenet
