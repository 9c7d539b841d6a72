// Runtime: one compiled XNNPACK runtime with its own pthreadpool and
// preallocated input/output buffers, set up once. runSync() runs on the
// calling thread; run() on the runtime's own worker thread (created on the
// first run(), joined on dispose or finalization), the promise settled on the
// JS thread through a thread-safe function. The same thread invokes every
// time, so the pthreadpool's caller stays warm (a libuv pool thread would
// change from call to call). Never two invocations at once: a call while busy
// throws.
#pragma once

#include <napi.h>
#include <pthreadpool.h>
#include <xnnpack.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"
#include "subgraph.h"

namespace mobilenet {

class Runtime : public Napi::ObjectWrap<Runtime> {
 public:
  static Napi::Function Init(Napi::Env env);
  static Napi::Object Create(Napi::Env env, std::unique_ptr<CompiledModel> model);
  explicit Runtime(const Napi::CallbackInfo& info);
  ~Runtime() override;

  MOBILENET_GUARDED_METHODS(Runtime)

  // Called on the JS thread (through the thread-safe function) when the
  // worker has finished a run().
  void FinishRun(Napi::Env env);

 private:
  // Shared with the thread-safe function's finalizer, which may run after the
  // Runtime is gone (environment teardown).
  struct WorkerState {
    std::mutex mutex;
    std::condition_variable wake;
    // Written under the mutex; atomic so that the worker can poll them.
    std::atomic<bool> job{false};   // a run() is posted and not yet picked up
    std::atomic<bool> stop{false};  // the worker exits once idle
    bool tsfn_live = false;         // the thread-safe function may still be called
    bool undelivered = false;       // a finished run could not be reported (NonBlockingCall failed)
  };
  static void CallJs(Napi::Env env, Napi::Function callback, Runtime* runtime, void* data);
  using DoneFunction = Napi::TypedThreadSafeFunction<Runtime, void, &Runtime::CallJs>;

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
  void SettleUndelivered(Napi::Env env);
  void Release();
  void StartWorker(Napi::Env env);
  void StopWorker();
  void WorkerLoop();

  std::unique_ptr<CompiledModel> model_;
  std::atomic<bool> busy_{false};
  bool dispose_pending_ = false;
  int64_t external_bytes_ = 0;

  // The worker thread and the run it executes (fields written on the JS
  // thread before the job is posted, read by the worker; status written by
  // the worker before it signals the JS thread).
  std::shared_ptr<WorkerState> state_;
  std::thread worker_;
  DoneFunction done_;
  xnn_status job_status_ = xnn_status_success;
  bool job_lost_ = false;
  std::unique_ptr<Napi::Promise::Deferred> job_deferred_;
  Napi::ObjectReference job_self_;
  Napi::ObjectReference job_output_;
};


}  // namespace mobilenet
