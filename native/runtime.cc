#include "runtime.h"

#include <chrono>
#include <cstring>
#include <system_error>
#include <utility>

namespace mobilenet {

namespace {

// How long the worker polls for the next run() before it sleeps.
constexpr std::chrono::microseconds kSpin(200);

Napi::Error DisposedError(Napi::Env env) { return CodedError(env, "Runtime has been disposed", "ERR_DISPOSED"); }

Napi::Error BusyError(Napi::Env env) {
  return CodedError(env, "Runtime is busy: one inference at a time (queue calls, e.g. through lib/runtime.ts)",
                    "ERR_BUSY");
}

Napi::Array ShapeArray(Napi::Env env, const std::vector<size_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++)
    a.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

}  // namespace

Napi::Function Runtime::Init(Napi::Env env) {
  return DefineClass(env, "Runtime",
                     {
                         InstanceMethod<&Runtime::Safe<&Runtime::RunSync>>("runSync"),
                         InstanceMethod<&Runtime::Safe<&Runtime::Run>>("run"),
                         InstanceMethod<&Runtime::Safe<&Runtime::Dispose>>("dispose"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetInputSize>>("inputSize"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetOutputSize>>("outputSize"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetInputShape>>("inputShape"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetOutputShape>>("outputShape"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetWeightBytes>>("weightBytes"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetBatch>>("batch"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetThreads>>("threads"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetDisposed>>("disposed"),
                         InstanceAccessor<&Runtime::Safe<&Runtime::GetBusy>>("busy"),
                     });
}

Napi::Object Runtime::Create(Napi::Env env, std::unique_ptr<CompiledModel> model) {
  Napi::External<CompiledModel> ext = Napi::External<CompiledModel>::New(env, model.get());
  Napi::Object obj = GetAddonData(env).runtime_constructor.New({ext});
  model.release();  // now owned by the Runtime
  return obj;
}

Runtime::Runtime(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Runtime>(info) {
  Napi::Env env = info.Env();
  // Only Graph.compile() can make one: JS code cannot create an External.
  if (info.Length() != 1 || !info[0].IsExternal()) {
    throw Napi::TypeError::New(env, "Runtime cannot be constructed directly: use Graph.compile()");
  }
  model_.reset(info[0].As<Napi::External<CompiledModel>>().Data());
  external_bytes_ = model_->ExternalBytes();
  AdjustExternal(env, external_bytes_);
}

Runtime::~Runtime() {
  // While a run() is in flight the object is referenced, so this only happens
  // then when the environment is torn down (process exit during a run):
  // joining the worker lets the invocation finish before the model is freed.
  Release();
}

void Runtime::Release() {
  StopWorker();
  model_.reset();
  if (external_bytes_ != 0) {
    AdjustExternal(Env(), -external_bytes_);  // never throws (runs at environment teardown too)
    external_bytes_ = 0;
  }
}

void Runtime::StartWorker(Napi::Env env) {
  state_ = std::make_shared<WorkerState>();
  std::shared_ptr<WorkerState> state = state_;
  done_ = DoneFunction::New(env, "mobilenet-xnnpack:run", 0, 1, this,
                            [state](Napi::Env, void*, Runtime*) {
                              std::lock_guard<std::mutex> lock(state->mutex);
                              state->tsfn_live = false;
                            });
  state_->tsfn_live = true;
  done_.Unref(env);  // referenced only while a run() is pending
  worker_ = std::thread([this] { WorkerLoop(); });
}

void Runtime::StopWorker() {
  if (!state_) return;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->stop = true;
  }
  state_->wake.notify_one();
  worker_.join();
  bool live;
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    live = state_->tsfn_live;
  }
  // Already finalized when the environment was torn down before this object
  // (the finalizer runs on this thread, so it cannot run in between).
  if (live) done_.Release();
  state_.reset();
}

void Runtime::WorkerLoop() {
  WorkerState& state = *state_;
  std::unique_lock<std::mutex> lock(state.mutex);
  for (;;) {
    if (!state.job && !state.stop) {
      // Spin a little before sleeping: back-to-back run() calls come within
      // microseconds, and waking a sleeping thread (an idle vCPU) costs tens.
      lock.unlock();
      auto until = std::chrono::steady_clock::now() + kSpin;
      while (!state.job.load(std::memory_order_acquire) && !state.stop.load() &&
             std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();
      }
      lock.lock();
    }
    state.wake.wait(lock, [&state] { return state.job || state.stop; });
    if (state.job) {
      state.job = false;
      lock.unlock();
      // Only the runtime's own buffers: the input was copied in on the JS
      // thread by run(), the output is copied out there when the run settles.
      job_status_ = xnn_invoke_runtime(model_->runtime.get());
      lock.lock();
      // Under the lock: the function's finalizer cannot run meanwhile. When the
      // call cannot be queued (the environment is closing), the next call on
      // the JS thread settles the promise with an error (SettleUndelivered).
      if (!state.tsfn_live || done_.NonBlockingCall() != napi_ok) state.undelivered = true;
    }
    if (state.stop) return;
  }
}

void Runtime::CallJs(Napi::Env env, Napi::Function, Runtime* runtime, void*) {
  // env is null when the queue is drained at teardown: the runtime may be gone.
  if (env == nullptr) return;
  // Nothing may escape into the thread-safe function's caller (std::terminate):
  // a failure to settle while the environment shuts down is dropped.
  try {
    runtime->FinishRun(env);
  } catch (...) {
    runtime->busy_.store(false);
  }
}

CompiledModel& Runtime::Live(Napi::Env env) {
  if (!model_ || dispose_pending_) throw DisposedError(env);
  return *model_;
}

void Runtime::CheckBuffers(Napi::Env env, const Napi::Value& input, const Napi::Value& output) {
  CompiledModel& m = Live(env);
  Napi::Float32Array in = ToFloat32Array(env, input, "input");
  Napi::Float32Array out = ToFloat32Array(env, output, "output");
  if (in.ElementLength() != m.input->size()) {
    ThrowRange(env, "Float32Array of length " + std::to_string(m.input->size()), "input", input);
  }
  if (out.ElementLength() != m.output->size()) {
    ThrowRange(env, "Float32Array of length " + std::to_string(m.output->size()), "output", output);
  }
  SettleUndelivered(env);
  if (busy_.load()) throw BusyError(env);
}

void Runtime::SettleUndelivered(Napi::Env env) {
  bool lost = false;
  if (state_) {
    std::lock_guard<std::mutex> lock(state_->mutex);
    lost = state_->undelivered;
    state_->undelivered = false;
  }
  if (lost && busy_.load()) {
    job_status_ = xnn_status_invalid_state;
    job_lost_ = true;
    FinishRun(env);
  }
}

Napi::Value Runtime::RunSync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckBuffers(env, info[0], info[1]);
  Napi::Float32Array in = info[0].As<Napi::Float32Array>();
  Napi::Float32Array out = info[1].As<Napi::Float32Array>();
  std::memcpy(model_->input->data(), in.Data(), model_->input->size() * sizeof(float));
  xnn_status s = xnn_invoke_runtime(model_->runtime.get());
  if (s != xnn_status_success)
    ThrowXnnError(env, "XNNPACK failed to run the graph: xnn_invoke_runtime failed", s);
  std::memcpy(out.Data(), model_->output->data(), model_->output->size() * sizeof(float));
  return env.Undefined();
}

Napi::Value Runtime::Run(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  CheckBuffers(env, info[0], info[1]);
  if (!state_) {
    try {
      StartWorker(env);
    } catch (const std::system_error& e) {
      state_.reset();
      throw CodedError(env, std::string("Could not start the runtime's worker thread: ") + e.what(),
                       "ERR_THREAD");
    }
  }
  Napi::Float32Array in = info[0].As<Napi::Float32Array>();
  Napi::Float32Array out = info[1].As<Napi::Float32Array>();
  // The input is copied now, on the JS thread: the caller may reuse, detach
  // or transfer its buffer as soon as run() returns.
  std::memcpy(model_->input->data(), in.Data(), model_->input->size() * sizeof(float));
  job_deferred_ = std::make_unique<Napi::Promise::Deferred>(Napi::Promise::Deferred::New(env));
  Napi::Promise promise = job_deferred_->Promise();
  job_self_ = Napi::Persistent(info.This().As<Napi::Object>());
  job_output_ = Napi::Persistent(static_cast<Napi::Object>(out));
  job_lost_ = false;
  busy_.store(true);
  done_.Ref(env);
  {
    std::lock_guard<std::mutex> lock(state_->mutex);
    state_->job = true;
  }
  state_->wake.notify_one();
  return promise;
}

void Runtime::FinishRun(Napi::Env env) {
  Napi::HandleScope scope(env);
  std::unique_ptr<Napi::Promise::Deferred> deferred = std::move(job_deferred_);
  xnn_status status = job_status_;
  Napi::Value error;
  if (job_lost_) {
    error = CodedError(env, "The runtime's worker could not report the end of a run", "ERR_RUN_LOST").Value();
  } else if (status != xnn_status_success) {
    error = XnnError(env, "XNNPACK failed to run the graph: xnn_invoke_runtime failed", status).Value();
  } else {
    // The output is copied into the caller's array here, on the JS thread;
    // if the caller detached or transferred it meanwhile, the run fails.
    Napi::Value v = job_output_.Value();
    bool ok = v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array;
    if (ok) {
      Napi::Float32Array out = v.As<Napi::Float32Array>();
      ok = out.ElementLength() == model_->output->size() && out.Data() != nullptr;
      if (ok) std::memcpy(out.Data(), model_->output->data(), model_->output->size() * sizeof(float));
    }
    if (!ok) {
      error = CodedError(env, "The output Float32Array was detached or transferred while the run was in progress",
                         "ERR_DETACHED")
                  .Value();
    }
  }
  job_output_.Reset();
  busy_.store(false);
  done_.Unref(env);
  if (dispose_pending_) Release();
  if (deferred) {
    if (error.IsEmpty()) {
      deferred->Resolve(env.Undefined());
    } else {
      deferred->Reject(error);
    }
  }
  job_self_.Reset();  // last: keeps this object alive until here
}

Napi::Value Runtime::Dispose(const Napi::CallbackInfo& info) {
  if (busy_.load()) {
    dispose_pending_ = true;  // released when the running inference finishes
  } else {
    Release();
  }
  return info.Env().Undefined();
}

Napi::Value Runtime::GetInputSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).input->size()));
}
Napi::Value Runtime::GetOutputSize(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).output->size()));
}
Napi::Value Runtime::GetInputShape(const Napi::CallbackInfo& info) {
  return ShapeArray(info.Env(), Live(info.Env()).input_shape);
}
Napi::Value Runtime::GetOutputShape(const Napi::CallbackInfo& info) {
  return ShapeArray(info.Env(), Live(info.Env()).output_shape);
}
Napi::Value Runtime::GetWeightBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).weight_bytes));
}
Napi::Value Runtime::GetBatch(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Live(info.Env()).batch);
}
Napi::Value Runtime::GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), Live(info.Env()).threads);
}
Napi::Value Runtime::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !model_ || dispose_pending_);
}
Napi::Value Runtime::GetBusy(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), busy_.load());
}

}  // namespace mobilenet
