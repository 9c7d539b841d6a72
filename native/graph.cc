#include "graph.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "runtime.h"

namespace mobilenet {

namespace {

// Largest rank accepted here. XNNPACK itself rejects values of more than
// XNN_MAX_TENSOR_DIMS (6) dimensions (batch included) with a status, which
// surfaces as an XnnpackError naming the node.
constexpr size_t kMaxRank = 8;
constexpr uint32_t kMaxBatch = 1u << 16;
constexpr uint32_t kMaxThreads = 1024;

std::string ShapeString(const std::vector<size_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); i++) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

uint32_t ConvOutputSize(uint32_t input, uint32_t kernel, uint32_t stride, uint32_t dilation,
                        uint32_t before, uint32_t after) {
  uint64_t effective = uint64_t{dilation} * (kernel - 1) + 1;
  uint64_t padded = uint64_t{input} + before + after;
  if (padded < effective) return 0;
  return static_cast<uint32_t>((padded - effective) / stride + 1);
}

bool Has(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  return !v.IsUndefined();
}

void Pair(Napi::Env env, const Napi::Object& o, const char* key, uint32_t out[2], uint32_t min) {
  std::vector<uint32_t> v = ToUint32Array(env, o.Get(key), key, 2, min, kMaxDim);
  out[0] = v[0];
  out[1] = v[1];
}

}  // namespace

Napi::Function Graph::Init(Napi::Env env) {
  return DefineClass(env, "Graph",
                     {
                         InstanceMethod<&Graph::Input>("input"),
                         InstanceMethod<&Graph::Constant>("constant"),
                         InstanceMethod<&Graph::AddNode>("addNode"),
                         InstanceMethod<&Graph::Output>("output"),
                         InstanceMethod<&Graph::Shape>("shape"),
                         InstanceMethod<&Graph::Compile>("compile"),
                         InstanceMethod<&Graph::Dispose>("dispose"),
                         InstanceAccessor<&Graph::GetDisposed>("disposed"),
                         InstanceAccessor<&Graph::GetTensorCount>("tensorCount"),
                         InstanceAccessor<&Graph::GetNodeCount>("nodeCount"),
                         InstanceAccessor<&Graph::GetWeightBytes>("weightBytes"),
                     });
}

Graph::Graph(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Graph>(info) {
  Napi::Env env = info.Env();
  if (!info.IsConstructCall()) throw Napi::TypeError::New(env, "Graph must be called with new");
  RequireInitialized(env);
  data_ = std::make_unique<GraphData>();
}

Graph::~Graph() { Release(); }

void Graph::Release() {
  if (external_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(Env(), -external_bytes_);
    external_bytes_ = 0;
  }
  data_.reset();
  disposed_ = true;
}

GraphData& Graph::Live(Napi::Env env) {
  if (disposed_ || !data_) {
    Napi::Error e = Napi::Error::New(env, "Graph has been disposed");
    e.Value().Set("code", Napi::String::New(env, "ERR_DISPOSED"));
    throw e;
  }
  return *data_;
}

const TensorRecord& Graph::TensorArg(Napi::Env env, const Napi::Value& v, const std::string& name,
                                     bool activation, uint32_t* id) {
  GraphData& g = Live(env);
  if (!v.IsNumber()) ThrowType(env, "tensor id", name, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d != std::floor(d) || d >= static_cast<double>(g.tensors.size())) {
    ThrowRange(env, "tensor id of this graph", name, v);
  }
  *id = static_cast<uint32_t>(d);
  const TensorRecord& t = g.tensors[*id];
  if (activation && !t.batched) ThrowRange(env, "activation tensor (not a constant)", name, v);
  return t;
}

void Graph::Account(Napi::Env env, const FloatBuffer& buffer) {
  if (!buffer) return;
  int64_t bytes = static_cast<int64_t>(buffer->size() * sizeof(float));
  Napi::MemoryManagement::AdjustExternalMemory(env, bytes);
  external_bytes_ += bytes;
  data_->weight_bytes += static_cast<size_t>(bytes);
}

uint32_t Graph::NewTensor(Napi::Env env, std::vector<size_t> shape, bool batched,
                          FloatBuffer data) {
  GraphData& g = Live(env);
  if (g.tensors.size() >= (1u << 24)) ThrowRangeMessage(env, "Expected fewer tensors for graph");
  if (shape.size() > kMaxRank + (batched ? 0 : 1)) {
    ThrowRangeMessage(env, "Expected a tensor of rank at most " +
                               std::to_string(kMaxRank + (batched ? 0 : 1)) +
                               " but received shape " + ShapeString(shape));
  }
  CheckedProduct(env, shape, "shape");
  g.tensors.push_back(TensorRecord{std::move(shape), batched, std::move(data)});
  return static_cast<uint32_t>(g.tensors.size() - 1);
}

FloatBuffer Graph::CopyWeights(Napi::Env env, const Napi::Value& v, const std::string& name,
                               uint64_t length, bool optional) {
  if (optional && (v.IsUndefined() || v.IsNull())) return nullptr;
  Napi::Float32Array a = ToFloat32Array(env, v, name);
  if (a.ElementLength() != length) {
    ThrowRange(env, "Float32Array of length " + std::to_string(length), name, v);
  }
  return std::make_shared<std::vector<float>>(a.Data(), a.Data() + a.ElementLength());
}

Napi::Value Graph::Input(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GraphData& g = Live(env);
  if (g.input >= 0)
    ThrowRangeMessage(env, "Expected one input for graph but received a second input()");
  std::vector<uint32_t> s = ToUint32Array(env, info[0], "shape", -1, 1, kMaxDim, kMaxRank);
  uint32_t id = NewTensor(env, std::vector<size_t>(s.begin(), s.end()), true, nullptr);
  g.input = id;
  return Napi::Number::New(env, id);
}

Napi::Value Graph::Constant(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Live(env);
  std::vector<uint32_t> s = ToUint32Array(env, info[1], "shape", -1, 1, kMaxDim, kMaxRank);
  std::vector<size_t> shape(s.begin(), s.end());
  uint64_t n = CheckedProduct(env, shape, "shape");
  FloatBuffer data = CopyWeights(env, info[0], "data", n, false);
  uint32_t id = NewTensor(env, std::move(shape), false, data);
  Account(env, data);
  return Napi::Number::New(env, id);
}

Napi::Value Graph::Output(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  TensorArg(env, info[0], "output", true, &id);
  data_->output = id;
  return env.Undefined();
}

Napi::Value Graph::Shape(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint32_t id;
  const TensorRecord& t = TensorArg(env, info[0], "id", false, &id);
  Napi::Array out = Napi::Array::New(env, t.shape.size());
  for (size_t i = 0; i < t.shape.size(); i++) out.Set(i, Napi::Number::New(env, t.shape[i]));
  return out;
}

Napi::Value Graph::AddNode(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GraphData& g = Live(env);
  if (g.nodes.size() >= (1u << 20)) ThrowRangeMessage(env, "Expected fewer nodes for graph");
  Napi::Object o = ToObject(env, info[0], "node");
  std::string op = ToString(env, o.Get("op"), "node.op");
  NodeRecord n;
  if (Has(o, "name")) n.name = ToString(env, o.Get("name"), "node.name");
  auto bounds = [&]() {
    double lo = Has(o, "outputMin") ? ToBound(env, o.Get("outputMin"), "outputMin")
                                    : -std::numeric_limits<double>::infinity();
    double hi = Has(o, "outputMax") ? ToBound(env, o.Get("outputMax"), "outputMax")
                                    : std::numeric_limits<double>::infinity();
    if (!(lo < hi)) {
      ThrowRangeMessage(env, "Expected outputMin < outputMax for " + op + " but received " +
                                 Describe(o.Get("outputMin")) + " and " +
                                 Describe(o.Get("outputMax")));
    }
    n.output_min = static_cast<float>(lo);
    n.output_max = static_cast<float>(hi);
  };
  std::vector<size_t> out;

  if (op == "conv2d" || op == "depthwiseConv2d") {
    const bool dw = op == "depthwiseConv2d";
    n.op = dw ? Op::kDepthwiseConv2d : Op::kConv2d;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    if (x.shape.size() != 3)
      ThrowRangeMessage(env, "Expected input of rank 3 (H, W, C) for " + op + " but received " +
                                 ShapeString(x.shape));
    const std::vector<size_t> xs = x.shape;  // (tensors may reallocate below)
    Pair(env, o, "kernel", n.kernel, 1);
    Pair(env, o, "stride", n.stride, 1);
    Pair(env, o, "dilation", n.dilation, 1);
    std::vector<uint32_t> p = ToUint32Array(env, o.Get("padding"), "padding", 4, 0, kMaxDim);
    std::copy(p.begin(), p.end(), n.padding);
    size_t out_c;
    uint64_t filter_len;
    if (dw) {
      n.input_channels = ToUint32(env, o.Get("inputChannels"), "inputChannels", 1, kMaxDim);
      n.depth_multiplier = ToUint32(env, o.Get("depthMultiplier"), "depthMultiplier", 1, kMaxDim);
      if (n.input_channels != xs[2])
        ThrowRange(env, "inputChannels equal to the input's " + std::to_string(xs[2]),
                   "inputChannels", o.Get("inputChannels"));
      out_c = n.input_channels * n.depth_multiplier;
      filter_len = uint64_t{n.kernel[0]} * n.kernel[1] * out_c;
    } else {
      n.groups = ToUint32(env, o.Get("groups"), "groups", 1, kMaxDim);
      n.group_input_channels =
          ToUint32(env, o.Get("groupInputChannels"), "groupInputChannels", 1, kMaxDim);
      n.group_output_channels =
          ToUint32(env, o.Get("groupOutputChannels"), "groupOutputChannels", 1, kMaxDim);
      if (uint64_t{n.groups} * n.group_input_channels != xs[2]) {
        ThrowRange(env,
                   "groups * groupInputChannels equal to the input's " + std::to_string(xs[2]) +
                       " channels",
                   "groupInputChannels", o.Get("groupInputChannels"));
      }
      out_c = n.groups * n.group_output_channels;
      filter_len = uint64_t{out_c} * n.kernel[0] * n.kernel[1] * n.group_input_channels;
    }
    if (filter_len > kMaxElements || out_c > kMaxDim)
      ThrowRangeMessage(env, "Expected a smaller filter for " + op);
    bounds();
    n.filter = CopyWeights(env, o.Get("filter"), "filter", filter_len, false);
    n.bias = CopyWeights(env, o.Get("bias"), "bias", out_c, true);
    uint32_t oh =
        ConvOutputSize(xs[0], n.kernel[0], n.stride[0], n.dilation[0], n.padding[0], n.padding[2]);
    uint32_t ow =
        ConvOutputSize(xs[1], n.kernel[1], n.stride[1], n.dilation[1], n.padding[3], n.padding[1]);
    if (oh == 0 || ow == 0)
      ThrowRangeMessage(env, "Expected kernel no larger than the padded input for " + op +
                                 " but received " + ShapeString(xs));
    out = {oh, ow, out_c};
  } else if (op == "add" || op == "multiply") {
    n.op = op == "add" ? Op::kAdd : Op::kMultiply;
    const TensorRecord& a = TensorArg(env, o.Get("a"), "a", false, &n.input);
    const TensorRecord& b = TensorArg(env, o.Get("b"), "b", false, &n.input2);
    if (!a.batched && !b.batched)
      ThrowRange(env, "at least one activation tensor", "a", o.Get("a"));
    size_t rank = std::max(a.shape.size(), b.shape.size());
    size_t batched_rank = std::max(a.batched ? a.shape.size() : 0, b.batched ? b.shape.size() : 0);
    if (rank > batched_rank)
      ThrowRangeMessage(env, "Expected a constant of rank at most " + std::to_string(batched_rank) +
                                 " for " + op + " but received rank " + std::to_string(rank));
    for (size_t i = 0; i < rank; i++) {
      size_t da = i + a.shape.size() >= rank ? a.shape[i + a.shape.size() - rank] : 1;
      size_t db = i + b.shape.size() >= rank ? b.shape[i + b.shape.size() - rank] : 1;
      if (da != db && da != 1 && db != 1) {
        ThrowRangeMessage(env, "Expected broadcastable shapes for " + op + " but received " +
                                   ShapeString(a.shape) + " and " + ShapeString(b.shape));
      }
      out.push_back(std::max(da, db));
    }
    bounds();
  } else if (op == "clamp") {
    n.op = Op::kClamp;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    out = x.shape;
    double lo = ToBound(env, o.Get("min"), "min");
    double hi = ToBound(env, o.Get("max"), "max");
    if (!(lo < hi))
      ThrowRangeMessage(env, "Expected min < max for clamp but received " + Describe(o.Get("min")) +
                                 " and " + Describe(o.Get("max")));
    n.output_min = static_cast<float>(lo);
    n.output_max = static_cast<float>(hi);
  } else if (op == "hardswish" || op == "sigmoid" || op == "softmax") {
    n.op = op == "hardswish" ? Op::kHardswish : op == "sigmoid" ? Op::kSigmoid : Op::kSoftmax;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    if (x.shape.empty()) ThrowRangeMessage(env, "Expected input of rank at least 1 for " + op);
    out = x.shape;
  } else if (op == "globalAveragePool") {
    n.op = Op::kGlobalAveragePool;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    if (x.shape.size() != 3)
      ThrowRangeMessage(env, "Expected input of rank 3 (H, W, C) for " + op + " but received " +
                                 ShapeString(x.shape));
    out = {1, 1, x.shape[2]};
  } else if (op == "averagePool2d" || op == "maxPool2d") {
    n.op = op == "averagePool2d" ? Op::kAveragePool2d : Op::kMaxPool2d;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    if (x.shape.size() != 3)
      ThrowRangeMessage(env, "Expected input of rank 3 (H, W, C) for " + op + " but received " +
                                 ShapeString(x.shape));
    const std::vector<size_t> xs = x.shape;
    Pair(env, o, "pool", n.kernel, 1);
    Pair(env, o, "stride", n.stride, 1);
    uint32_t oh = ConvOutputSize(xs[0], n.kernel[0], n.stride[0], 1, 0, 0);
    uint32_t ow = ConvOutputSize(xs[1], n.kernel[1], n.stride[1], 1, 0, 0);
    if (oh == 0 || ow == 0)
      ThrowRangeMessage(env, "Expected pool no larger than the input for " + op + " but received " +
                                 ShapeString(xs));
    out = {oh, ow, xs[2]};
  } else if (op == "fullyConnected") {
    n.op = Op::kFullyConnected;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    if (x.shape.empty()) ThrowRangeMessage(env, "Expected input of rank at least 1 for " + op);
    const std::vector<size_t> xs = x.shape;
    n.input_channels = ToUint32(env, o.Get("inputChannels"), "inputChannels", 1, kMaxDim);
    n.output_channels = ToUint32(env, o.Get("outputChannels"), "outputChannels", 1, kMaxDim);
    if (n.input_channels != xs.back())
      ThrowRange(env,
                 "inputChannels equal to the input's last dimension " + std::to_string(xs.back()),
                 "inputChannels", o.Get("inputChannels"));
    uint64_t len = uint64_t{n.input_channels} * n.output_channels;
    if (len > kMaxElements) ThrowRangeMessage(env, "Expected smaller weights for fullyConnected");
    bounds();
    n.filter = CopyWeights(env, o.Get("weights"), "weights", len, false);
    n.bias = CopyWeights(env, o.Get("bias"), "bias", n.output_channels, true);
    out = xs;
    out.back() = n.output_channels;
  } else if (op == "pad") {
    n.op = Op::kPad;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    const std::vector<size_t> xs = x.shape;
    int rank = static_cast<int>(xs.size());
    std::vector<uint32_t> pre =
        ToUint32Array(env, o.Get("prePadding"), "prePadding", rank, 0, kMaxDim);
    std::vector<uint32_t> post =
        ToUint32Array(env, o.Get("postPadding"), "postPadding", rank, 0, kMaxDim);
    n.pre_padding.assign(pre.begin(), pre.end());
    n.post_padding.assign(post.begin(), post.end());
    n.pad_value =
        static_cast<float>(Has(o, "value") ? ToFinite(env, o.Get("value"), "value") : 0.0);
    for (int i = 0; i < rank; i++) out.push_back(xs[i] + pre[i] + post[i]);
  } else if (op == "reshape") {
    n.op = Op::kReshape;
    const TensorRecord& x = TensorArg(env, o.Get("input"), "input", true, &n.input);
    const std::vector<size_t> xs = x.shape;
    std::vector<uint32_t> s = ToUint32Array(env, o.Get("shape"), "shape", -1, 1, kMaxDim, kMaxRank);
    n.new_shape.assign(s.begin(), s.end());
    if (CheckedProduct(env, n.new_shape, "shape") != CheckedProduct(env, xs, "input")) {
      ThrowRangeMessage(env, "Expected shape with " +
                                 std::to_string(CheckedProduct(env, xs, "input")) +
                                 " elements for reshape but received " + ShapeString(n.new_shape));
    }
    out = n.new_shape;
  } else {
    ThrowRange(
        env,
        "a known op (conv2d, depthwiseConv2d, add, multiply, clamp, hardswish, sigmoid, "
        "softmax, globalAveragePool, averagePool2d, maxPool2d, fullyConnected, pad, reshape)",
        "node.op", o.Get("op"));
  }
  n.output = NewTensor(env, std::move(out), true, nullptr);
  Account(env, n.filter);
  Account(env, n.bias);
  g.nodes.push_back(std::move(n));
  return Napi::Number::New(env, g.nodes.back().output);
}

Napi::Value Graph::Compile(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GraphData& g = Live(env);
  uint32_t batch = ToUint32(env, info[0], "batch", 1, kMaxBatch);
  uint32_t threads = ToUint32(env, info[1], "threads", 1, kMaxThreads);
  if (g.input < 0) ThrowRangeMessage(env, "Expected an input() in graph but received none");
  if (g.output < 0) ThrowRangeMessage(env, "Expected an output() in graph but received none");
  // Every batched tensor must fit with the batch prepended.
  for (const TensorRecord& t : g.tensors) {
    if (!t.batched) continue;
    std::vector<size_t> dims = t.shape;
    dims.push_back(batch);
    CheckedProduct(env, dims, "tensor with batch " + std::to_string(batch));
  }
  return Runtime::Create(env, CompileModel(env, g, batch, threads));
}

Napi::Value Graph::Dispose(const Napi::CallbackInfo& info) {
  Release();
  return info.Env().Undefined();
}

Napi::Value Graph::GetDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

Napi::Value Graph::GetTensorCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).tensors.size()));
}

Napi::Value Graph::GetNodeCount(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).nodes.size()));
}

Napi::Value Graph::GetWeightBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(Live(info.Env()).weight_bytes));
}

}  // namespace mobilenet
