#include "graph.h"

#include <cstring>
#include <new>
#include <system_error>

#include "format.h"
#include "runtime.h"
#include "subgraph.h"

namespace mobilenet {

namespace {

constexpr uint32_t kMaxBatch = 1u << 16;
constexpr uint32_t kMaxThreads = 1024;
constexpr double kMaxGraphBytes = 1099511627776.0;  // 2^40, AlignedBytes' limit

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
                         InstanceMethod<&Graph::Safe<&Graph::Write>>("write"),
                         InstanceMethod<&Graph::Safe<&Graph::Finish>>("finish"),
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
  if (v.IsNumber()) {
    // Written in pieces: reserve the bytes now (untouched pages cost nothing yet).
    double size = v.As<Napi::Number>().DoubleValue();
    if (!(size >= 1 && size <= kMaxGraphBytes) || size != static_cast<double>(static_cast<uint64_t>(size))) {
      ThrowRange(env, "positive integer of at most 2^40", "size", v);
    }
    try {
      pending_ = std::make_shared<AlignedBytes>(static_cast<size_t>(size));
    } catch (const std::bad_alloc&) {
      throw XnnError(env, "Out of memory while reserving a serialized graph", xnn_status_out_of_memory);
    }
    external_bytes_ = static_cast<int64_t>(pending_->capacity());
    AdjustExternal(env, external_bytes_);
    return;
  }
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

Napi::Value Graph::Write(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pending_) throw CodedError(env, "Graph.write() is only for a graph made with new Graph(size) and not finished", "ERR_GRAPH_FORMAT");
  Napi::Value at = info[0];
  if (!at.IsNumber()) ThrowType(env, "non-negative integer", "offset", at);
  double offset = at.As<Napi::Number>().DoubleValue();
  if (!(offset >= 0 && offset <= static_cast<double>(pending_->size())) ||
      offset != static_cast<double>(static_cast<uint64_t>(offset))) {
    ThrowRange(env, "integer from 0 to " + std::to_string(pending_->size()), "offset", at);
  }
  Napi::Value v = info[1];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, "Uint8Array", "bytes", v);
  }
  Napi::Uint8Array bytes = v.As<Napi::Uint8Array>();
  size_t from = static_cast<size_t>(offset);
  if (bytes.ByteLength() > pending_->size() - from) {
    ThrowRange(env, "Uint8Array of at most " + std::to_string(pending_->size() - from) + " bytes", "bytes", v);
  }
  if (bytes.ByteLength() > 0) std::memcpy(pending_->data() + from, bytes.Data(), bytes.ByteLength());
  return env.Undefined();
}

Napi::Value Graph::Finish(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!pending_) throw CodedError(env, "Graph.finish() is only for a graph made with new Graph(size) and not finished", "ERR_GRAPH_FORMAT");
  std::shared_ptr<AlignedBytes> bytes = std::move(pending_);
  try {
    data_ = std::make_shared<const GraphData>(ParseGraph(std::move(bytes)));
  } catch (const GraphFormatError& e) {
    Release();
    throw CodedError(env, e.what(), "ERR_GRAPH_FORMAT");
  } catch (const std::bad_alloc&) {
    Release();
    throw XnnError(env, "Out of memory while reading the serialized graph", xnn_status_out_of_memory);
  }
  return env.Undefined();
}

void Graph::Release() {
  if (external_bytes_ != 0) {
    AdjustExternal(Env(), -external_bytes_);
    external_bytes_ = 0;
  }
  data_.reset();
  pending_.reset();
}

const std::shared_ptr<const GraphData>& Graph::Live(Napi::Env env) {
  if (pending_) throw CodedError(env, "Graph is still being written: call finish() first", "ERR_GRAPH_FORMAT");
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
  return Napi::Boolean::New(info.Env(), !data_ && !pending_);
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
