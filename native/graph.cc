#include "graph.h"

#include <new>
#include <system_error>

#include "format.h"
#include "runtime.h"
#include "subgraph.h"

namespace mobilenet {

namespace {

constexpr uint32_t kMaxBatch = 1u << 16;
constexpr uint32_t kMaxThreads = 1024;

Napi::Array ShapeArray(Napi::Env env, const std::vector<size_t>& shape, uint32_t batch) {
  Napi::Array a = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); i++) a.Set(i, Napi::Number::New(env, static_cast<double>(shape[i])));
  (void)batch;
  return a;
}

// Builds a runtime off the event loop; the promise resolves to a Runtime.
class CompileWorker : public Napi::AsyncWorker {
 public:
  CompileWorker(Napi::Env env, std::shared_ptr<const GraphData> graph, uint32_t batch, uint32_t threads)
      : Napi::AsyncWorker(env, "mobilenet-xnnpack:compile"),
        deferred_(Napi::Promise::Deferred::New(env)),
        graph_(std::move(graph)),
        batch_(batch),
        threads_(threads) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    // Exceptions must not leave this thread: they become a rejected promise.
    try {
      model_ = BuildModel(*graph_, batch_, threads_, 0, &error_);
      if (!model_) failed_ = true;
    } catch (const std::bad_alloc&) {
      error_ = {xnn_status_out_of_memory, "Out of memory while compiling the graph", ""};
      failed_ = true;
    } catch (const std::exception& e) {
      error_ = {xnn_status_invalid_state, std::string("Compiling the graph failed: ") + e.what(), ""};
      failed_ = true;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (failed_) {
      deferred_.Reject(XnnError(env, error_.message, error_.status, error_.node).Value());
      return;
    }
    try {
      deferred_.Resolve(Runtime::Create(env, std::move(model_)));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<const GraphData> graph_;
  uint32_t batch_;
  uint32_t threads_;
  std::unique_ptr<CompiledModel> model_;
  CompileError error_;
  bool failed_ = false;
};

}  // namespace

Napi::Function Graph::Init(Napi::Env env) {
  return DefineClass(env, "Graph",
                     {
                         InstanceMethod<&Graph::Safe<&Graph::Compile>>("compile"),
                         InstanceMethod<&Graph::Safe<&Graph::CompileAsync>>("compileAsync"),
                         InstanceMethod<&Graph::Safe<&Graph::Dispose>>("dispose"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetDisposed>>("disposed"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetTensorCount>>("tensorCount"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetNodeCount>>("nodeCount"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetWeightBytes>>("weightBytes"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetInputShape>>("inputShape"),
                         InstanceAccessor<&Graph::Safe<&Graph::GetOutputShape>>("outputShape"),
                     });
}

Graph::Graph(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Graph>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "Graph must be called with new");
  RequireInitialized(env);
  Napi::Value v = info[0];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "Uint8Array (a serialized graph)", "bytes", v);
  }
  Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
  try {
    data_ = std::make_shared<const GraphData>(ParseGraph(bytes.Data(), bytes.ByteLength()));
  } catch (const GraphFormatError& e) {
    throw CodedError(env, e.what(), "ERR_GRAPH_FORMAT");
  } catch (const std::bad_alloc&) {
    throw XnnError(env, "Out of memory while reading the serialized graph", xnn_status_out_of_memory);
  }
  if (data_->blob) external_bytes_ = static_cast<int64_t>(data_->blob->capacity());
  AdjustExternal(env, external_bytes_);
}

Graph::~Graph() { Release(); }

void Graph::Release() {
  if (external_bytes_ != 0) {
    AdjustExternal(Env(), -external_bytes_);
    external_bytes_ = 0;
  }
  data_.reset();
}

const std::shared_ptr<const GraphData>& Graph::Live(Napi::Env env) {
  if (!data_) throw CodedError(env, "Graph has been disposed", "ERR_DISPOSED");
  return data_;
}

Napi::Value Graph::Compile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const GraphData& g = *Live(env);
  uint32_t batch = ToUint32(env, info[0], "batch", 1, kMaxBatch);
  uint32_t threads = ToUint32(env, info[1], "threads", 1, kMaxThreads);
  CompileError error;
  std::unique_ptr<CompiledModel> model;
  try {
    model = BuildModel(g, batch, threads, 0, &error);
  } catch (const std::bad_alloc&) {
    throw XnnError(env, "Out of memory while compiling the graph", xnn_status_out_of_memory);
  }
  if (!model) throw XnnError(env, error.message, error.status, error.node);
  return Runtime::Create(env, std::move(model));
}

Napi::Value Graph::CompileAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::shared_ptr<const GraphData> g = Live(env);
  uint32_t batch = ToUint32(env, info[0], "batch", 1, kMaxBatch);
  uint32_t threads = ToUint32(env, info[1], "threads", 1, kMaxThreads);
  auto* worker = new CompileWorker(env, std::move(g), batch, threads);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value Graph::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value Graph::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !data_);
}

Napi::Value Graph::GetTensorCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env())->tensors.size()));
}

Napi::Value Graph::GetNodeCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env())->nodes.size()));
}

Napi::Value Graph::GetWeightBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env())->weight_bytes));
}

Napi::Value Graph::GetInputShape(const Napi::CallbackInfo& info) {
  const GraphData& g = *Live(info.Env());
  return ShapeArray(info.Env(), g.tensors[g.input].shape, 0);
}

Napi::Value Graph::GetOutputShape(const Napi::CallbackInfo& info) {
  const GraphData& g = *Live(info.Env());
  return ShapeArray(info.Env(), g.tensors[g.output].shape, 0);
}

}  // namespace mobilenet
