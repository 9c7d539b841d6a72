// Runtime: one compiled XNNPACK runtime with its own pthreadpool and
// preallocated input/output buffers, set up once. runSync() runs on the
// calling thread; run() on a libuv worker (Napi::AsyncWorker) with a promise.
// Never two invocations at once: a call while busy throws.
#pragma once

#include <napi.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <atomic>
#include <memory>
#include <vector>

#include "common.h"
#include "graph.h"
#include "subgraph.h"

namespace mobilenet {

class Runtime : public Napi::ObjectWrap<Runtime> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::unique_ptr<CompiledModel> model);
  explicit Runtime(const Napi::CallbackInfo& info);
  ~Runtime() override;

  // Called on the main thread when a run() finishes.
  void FinishRun();
  // Set by the worker thread around the invocation itself.
  void SetExecuting(bool executing) { executing_.store(executing); }

 private:
  Napi::Value RunSync(const Napi::CallbackInfo& info);
  Napi::Value Run(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value GetInputSize(const Napi::CallbackInfo& info);
  Napi::Value GetOutputSize(const Napi::CallbackInfo& info);
  Napi::Value GetInputShape(const Napi::CallbackInfo& info);
  Napi::Value GetOutputShape(const Napi::CallbackInfo& info);
  Napi::Value GetWeightBytes(const Napi::CallbackInfo& info);
  Napi::Value GetBatch(const Napi::CallbackInfo& info);
  Napi::Value GetThreads(const Napi::CallbackInfo& info);
  Napi::Value GetDisposed(const Napi::CallbackInfo& info);
  Napi::Value GetBusy(const Napi::CallbackInfo& info);

  CompiledModel& Live(Napi::Env env);
  void CheckBuffers(Napi::Env env, const Napi::Value& input, const Napi::Value& output);
  void Release();

  std::unique_ptr<CompiledModel> model_;
  std::atomic<bool> busy_{false};
  std::atomic<bool> executing_{false};
  bool dispose_pending_ = false;
  int64_t external_bytes_ = 0;
};

// BuildModel(), throwing a JS Error with `status` and `node` on failure.
std::unique_ptr<CompiledModel> CompileModel(Napi::Env env, const GraphData& graph, uint32_t batch,
                                            uint32_t threads);

}  // namespace mobilenet
