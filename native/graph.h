// Graph: records tensors and nodes (with copies of their weights) from JS,
// checks every argument and infers every shape, and compiles them into an
// XNNPACK subgraph + runtime (native/runtime.h) for a fixed batch size.
#pragma once

#include <napi.h>
#include <xnnpack.h>

#include <memory>
#include <string>
#include <vector>

#include "common.h"
#include "ir.h"

namespace mobilenet {

class Graph : public Napi::ObjectWrap<Graph> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit Graph(const Napi::CallbackInfo& info);
  ~Graph() override;

 private:
  Napi::Value Input(const Napi::CallbackInfo& info);
  Napi::Value Constant(const Napi::CallbackInfo& info);
  Napi::Value AddNode(const Napi::CallbackInfo& info);
  Napi::Value Output(const Napi::CallbackInfo& info);
  Napi::Value Shape(const Napi::CallbackInfo& info);
  Napi::Value Compile(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetTensorCount(const Napi::CallbackInfo& info);
  Napi::Value GetNodeCount(const Napi::CallbackInfo& info);
  Napi::Value GetWeightBytes(const Napi::CallbackInfo& info);

  GraphData& Live(Napi::Env env);
  const TensorRecord& TensorArg(Napi::Env env, const Napi::Value& v, const std::string& name,
                                bool activation, uint32_t* id);
  uint32_t NewTensor(Napi::Env env, std::vector<size_t> shape, bool batched, FloatBuffer data);
  FloatBuffer CopyWeights(Napi::Env env, const Napi::Value& v, const std::string& name,
                          uint64_t length, bool optional);
  // Counts a committed weight buffer (V8 external memory, weightBytes).
  void Account(Napi::Env env, const FloatBuffer& buffer);
  void Release();

  std::unique_ptr<GraphData> data_;
  int64_t external_bytes_ = 0;
  bool disposed_ = false;
};

}  // namespace mobilenet
