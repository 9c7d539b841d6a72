#include "runtime.h"

#include <chrono>
#include <cstring>
#include <thread>
#include <utility>

namespace mobilenet {

namespace {

Napi::Error DisposedError(Napi::Env env) {
  Napi::Error e = Napi::Error::New(env, "Runtime has been disposed");
  e.Value().Set("code", Napi::String::New(env, "ERR_DISPOSED"));
  return e;
}

Napi::Error BusyError(Napi::Env env) {
  Napi::Error e = Napi::Error::New(
      env, "Runtime is busy: one inference at a time (queue calls, e.g. through lib/runtime.ts)");
  e.Value().Set("code", Napi::String::New(env, "ERR_BUSY"));
  return e;
}

Napi::Array ShapeArray(Napi::Env env, const std::vector<size_t>& shape) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++)
    a.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  return a;
}

// One inference on a libuv worker thread. Holds references to the runtime
// object and to both arrays until it completes.
class RunWorker : public Napi::AsyncWorker {
 public:
  RunWorker(Napi::Env env, Runtime* owner, CompiledModel* model, Napi::Object self,
            Napi::Float32Array input, Napi::Float32Array output)
      : Napi::AsyncWorker(env, "mobilenet-xnnpack:run"),
        deferred_(Napi::Promise::Deferred::New(env)),
        owner_(owner),
        model_(model),
        in_(input.Data()),
        out_(output.Data()),
        in_count_(input.ElementLength()),
        out_count_(output.ElementLength()) {
    self_ = Napi::Persistent(self);
    input_ref_ = Napi::Persistent(static_cast<Napi::Object>(input));
    output_ref_ = Napi::Persistent(static_cast<Napi::Object>(output));
  }

  Napi::Promise Promise() const { return deferred_.Promise(); }

  void Execute() override {
    owner_->SetExecuting(true);
    std::memcpy(model_->input->data(), in_, in_count_ * sizeof(float));
    status_ = xnn_invoke_runtime(model_->runtime.get());
    if (status_ == xnn_status_success) {
      std::memcpy(out_, model_->output->data(), out_count_ * sizeof(float));
    }
    owner_->SetExecuting(false);
  }

  void OnOK() override {
    Napi::Env env = Env();
    owner_->FinishRun();
    if (status_ != xnn_status_success) {
      Napi::Error e =
          Napi::Error::New(env, "XNNPACK failed to run the graph: xnn_invoke_runtime failed (" +
                                    StatusName(status_) + ")");
      e.Value().Set("status", Napi::String::New(env, StatusName(status_)));
      deferred_.Reject(e.Value());
    } else {
      deferred_.Resolve(env.Undefined());
    }
  }

  void OnError(const Napi::Error& error) override {
    owner_->FinishRun();
    deferred_.Reject(error.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  Runtime* owner_;
  CompiledModel* model_;
  const float* in_;
  float* out_;
  size_t in_count_;
  size_t out_count_;
  xnn_status status_ = xnn_status_success;
  Napi::ObjectReference self_;
  Napi::ObjectReference input_ref_;
  Napi::ObjectReference output_ref_;
};

}  // namespace

std::unique_ptr<CompiledModel> CompileModel(Napi::Env env, const GraphData& graph, uint32_t batch,
                                            uint32_t threads) {
  CompileError error;
  std::unique_ptr<CompiledModel> model = BuildModel(graph, batch, threads, 0, &error);
  if (!model) ThrowXnnError(env, error.message, error.status, error.node);
  return model;
}

Napi::Function Runtime::Init(Napi::Env env) {
  return DefineClass(env, "Runtime",
                     {
                         InstanceMethod<&Runtime::RunSync>("runSync"),
                         InstanceMethod<&Runtime::Run>("run"),
                         InstanceMethod<&Runtime::Dispose>("dispose"),
                         InstanceAccessor<&Runtime::GetInputSize>("inputSize"),
                         InstanceAccessor<&Runtime::GetOutputSize>("outputSize"),
                         InstanceAccessor<&Runtime::GetInputShape>("inputShape"),
                         InstanceAccessor<&Runtime::GetOutputShape>("outputShape"),
                         InstanceAccessor<&Runtime::GetWeightBytes>("weightBytes"),
                         InstanceAccessor<&Runtime::GetBatch>("batch"),
                         InstanceAccessor<&Runtime::GetThreads>("threads"),
                         InstanceAccessor<&Runtime::GetDisposed>("disposed"),
                         InstanceAccessor<&Runtime::GetBusy>("busy"),
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
  Napi::MemoryManagement::AdjustExternalMemory(env, external_bytes_);
}

Runtime::~Runtime() {
  // Only reachable while a worker executes when the environment is torn down
  // (process exit during a run): let the invocation finish before freeing.
  while (executing_.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Release();
}

void Runtime::Release() {
  model_.reset();
  if (external_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_bytes_);
    external_bytes_ = 0;
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
  if (busy_.load()) throw BusyError(env);
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
  auto* worker = new RunWorker(env, this, model_.get(), info.This().As<Napi::Object>(),
                               info[0].As<Napi::Float32Array>(), info[1].As<Napi::Float32Array>());
  Napi::Promise promise = worker->Promise();
  busy_.store(true);
  worker->Queue();
  return promise;
}

void Runtime::FinishRun() {
  busy_.store(false);
  if (dispose_pending_) Release();
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
