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

namespace mobilenet {

enum class Op {
  kConv2d,
  kDepthwiseConv2d,
  kAdd,
  kMultiply,
  kClamp,
  kHardswish,
  kSigmoid,
  kSoftmax,
  kGlobalAveragePool,
  kAveragePool2d,
  kFullyConnected,
  kPad,
  kReshape,
};

const char* OpName(Op op);

using FloatBuffer = std::shared_ptr<const std::vector<float>>;

struct TensorRecord {
  std::vector<size_t> shape;  // per-sample shape (batched) or whole shape (constant)
  bool batched = true;
  FloatBuffer data;  // constants only
};

struct NodeRecord {
  Op op = Op::kClamp;
  std::string name;
  uint32_t input = 0;
  uint32_t input2 = 0;  // second operand of add/multiply
  uint32_t output = 0;
  FloatBuffer filter;
  FloatBuffer bias;
  uint32_t kernel[2] = {1, 1};  // also the pool size
  uint32_t stride[2] = {1, 1};
  uint32_t dilation[2] = {1, 1};
  uint32_t padding[4] = {0, 0, 0, 0};  // top, right, bottom, left
  uint32_t groups = 1;
  size_t group_input_channels = 0;
  size_t group_output_channels = 0;
  uint32_t depth_multiplier = 1;
  size_t input_channels = 0;
  size_t output_channels = 0;
  float output_min = 0;
  float output_max = 0;
  std::vector<size_t> pre_padding;
  std::vector<size_t> post_padding;
  float pad_value = 0;
  std::vector<size_t> new_shape;
};

// The recorded graph. Weight buffers are shared with compiled runtimes.
struct GraphData {
  std::vector<TensorRecord> tensors;
  std::vector<NodeRecord> nodes;
  int64_t input = -1;
  int64_t output = -1;
  size_t weight_bytes = 0;
};

// Label of node i for error messages: "#3 'conv_pw_1' (conv2d)".
std::string NodeLabel(const GraphData& g, size_t i);
// The node's name, or "#3" when it has none (the `node` of XNNPACK errors).
std::string NodeId(const GraphData& g, size_t i);

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
