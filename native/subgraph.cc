// Lowers a recorded GraphData to an XNNPACK subgraph for a fixed batch and
// creates its runtime (see subgraph.h).
#include "subgraph.h"

#include <cmath>
#include <map>
#include <utility>

namespace mobilenet {

namespace {

struct SubgraphDeleter {
  void operator()(xnn_subgraph_t s) const { xnn_delete_subgraph(s); }
};
using SubgraphPtr = std::unique_ptr<xnn_subgraph, SubgraphDeleter>;

constexpr uint32_t kInputExternalId = 0;
constexpr uint32_t kOutputExternalId = 1;

struct BuildResult {
  xnn_status status = xnn_status_success;
  std::string what;   // the XNNPACK call that failed
  int64_t node = -1;  // index of the failing node, -1 when not known
};

class SubgraphBuilder {
 public:
  SubgraphBuilder(const GraphData& g, uint32_t batch, uint32_t output)
      : g_(g), batch_(batch), output_(output) {}

  // Defines nodes [0, count) with `output_` as the external output.
  BuildResult Build(size_t count) {
    xnn_subgraph_t raw = nullptr;
    xnn_status s = xnn_create_subgraph(2, 0, &raw);
    if (s != xnn_status_success) return {s, "xnn_create_subgraph", -1};
    subgraph_.reset(raw);
    if (static_cast<int64_t>(output_) == g_.input) {
      // Identity graph (output() of the input): copy through a clamp to ±inf.
      uint32_t in = 0, out = 0;
      std::vector<size_t> dims = Batched(g_.tensors[output_].shape);
      s = Define(dims, nullptr, kInputExternalId, XNN_VALUE_FLAG_EXTERNAL_INPUT, &in);
      if (s != xnn_status_success) return {s, "xnn_define_tensor_value", -1};
      s = Define(dims, nullptr, kOutputExternalId, XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &out);
      if (s != xnn_status_success) return {s, "xnn_define_tensor_value", -1};
      s = xnn_define_clamp(subgraph_.get(), -INFINITY, INFINITY, in, out, 0);
      if (s != xnn_status_success) return {s, "xnn_define_clamp", -1};
      return {};
    }
    for (size_t i = 0; i < count; i++) {
      BuildResult r = DefineNode(g_.nodes[i]);
      if (r.status != xnn_status_success) {
        r.node = static_cast<int64_t>(i);
        return r;
      }
    }
    return {};
  }

  SubgraphPtr Take() { return std::move(subgraph_); }

 private:
  std::vector<size_t> Batched(const std::vector<size_t>& shape) const {
    std::vector<size_t> dims;
    dims.reserve(shape.size() + 1);
    dims.push_back(batch_);
    dims.insert(dims.end(), shape.begin(), shape.end());
    return dims;
  }

  xnn_status Define(const std::vector<size_t>& dims, const void* data, uint32_t external,
                    uint32_t flags, uint32_t* id) {
    return xnn_define_tensor_value(subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(),
                                   data, external, flags, id);
  }

  // The XNNPACK value of a batched tensor, [N, ...shape].
  xnn_status Activation(uint32_t tensor, uint32_t* id) {
    auto it = values_.find({tensor, 0});
    if (it != values_.end()) {
      *id = it->second;
      return xnn_status_success;
    }
    uint32_t external = XNN_INVALID_VALUE_ID;
    uint32_t flags = 0;
    if (static_cast<int64_t>(tensor) == g_.input) {
      external = kInputExternalId;
      flags = XNN_VALUE_FLAG_EXTERNAL_INPUT;
    } else if (tensor == output_) {
      external = kOutputExternalId;
      flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
    }
    xnn_status s = Define(Batched(g_.tensors[tensor].shape), nullptr, external, flags, id);
    if (s == xnn_status_success) values_[{tensor, 0}] = *id;
    return s;
  }

  xnn_status Static(const std::vector<size_t>& dims, const FloatBuffer& data, uint32_t* id) {
    return Define(dims, data->data(), XNN_INVALID_VALUE_ID, 0, id);
  }

  // An operand of a broadcasting binary node, as a value of rank `rank`
  // (batch included): constants are left-padded with 1s; lower-rank
  // activations are reshaped to [N, 1, ..., 1, shape].
  xnn_status Operand(uint32_t tensor, size_t rank, uint32_t* id) {
    const TensorRecord& t = g_.tensors[tensor];
    if (t.batched && t.shape.size() + 1 == rank) return Activation(tensor, id);
    auto key = std::make_pair(tensor, rank);
    auto it = values_.find(key);
    if (it != values_.end()) {
      *id = it->second;
      return xnn_status_success;
    }
    size_t own = t.shape.size() + (t.batched ? 1 : 0);
    std::vector<size_t> dims;
    if (t.batched) dims.push_back(batch_);
    dims.insert(dims.end(), rank - own, 1);
    dims.insert(dims.end(), t.shape.begin(), t.shape.end());
    xnn_status s;
    if (t.batched) {
      uint32_t source;
      s = Activation(tensor, &source);
      if (s != xnn_status_success) return s;
      s = Define(dims, nullptr, XNN_INVALID_VALUE_ID, 0, id);
      if (s != xnn_status_success) return s;
      s = xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(), source, *id, 0);
    } else {
      s = Static(dims, t.data, id);
    }
    if (s == xnn_status_success) values_[key] = *id;
    return s;
  }

  BuildResult DefineNode(const NodeRecord& n) {
    uint32_t in = 0, in2 = 0, out = 0, filter = 0, bias = XNN_INVALID_VALUE_ID;
    xnn_status s = xnn_status_success;
#define MOBILENET_CHECK(call, name)                    \
  do {                                                 \
    s = (call);                                        \
    if (s != xnn_status_success) return {s, name, -1}; \
  } while (0)
    const bool binary = n.op == Op::kAdd || n.op == Op::kMultiply;
    if (!binary) MOBILENET_CHECK(Activation(n.input, &in), "xnn_define_tensor_value");
    MOBILENET_CHECK(Activation(n.output, &out), "xnn_define_tensor_value");
    switch (n.op) {
      case Op::kConv2d: {
        size_t oc = size_t{n.groups} * n.group_output_channels;
        MOBILENET_CHECK(
            Static({oc, n.kernel[0], n.kernel[1], n.group_input_channels}, n.filter, &filter),
            "xnn_define_tensor_value");
        if (n.bias) MOBILENET_CHECK(Static({oc}, n.bias, &bias), "xnn_define_tensor_value");
        MOBILENET_CHECK(
            xnn_define_convolution_2d(subgraph_.get(), n.padding[0], n.padding[1], n.padding[2],
                                      n.padding[3], n.kernel[0], n.kernel[1], n.stride[0],
                                      n.stride[1], n.dilation[0], n.dilation[1], n.groups,
                                      n.group_input_channels, n.group_output_channels, n.output_min,
                                      n.output_max, in, filter, bias, out, 0),
            "xnn_define_convolution_2d");
        break;
      }
      case Op::kDepthwiseConv2d: {
        size_t oc = n.input_channels * n.depth_multiplier;
        MOBILENET_CHECK(Static({1, n.kernel[0], n.kernel[1], oc}, n.filter, &filter),
                        "xnn_define_tensor_value");
        if (n.bias) MOBILENET_CHECK(Static({oc}, n.bias, &bias), "xnn_define_tensor_value");
        MOBILENET_CHECK(xnn_define_depthwise_convolution_2d(
                            subgraph_.get(), n.padding[0], n.padding[1], n.padding[2], n.padding[3],
                            n.kernel[0], n.kernel[1], n.stride[0], n.stride[1], n.dilation[0],
                            n.dilation[1], n.depth_multiplier, n.input_channels, n.output_min,
                            n.output_max, in, filter, bias, out, 0),
                        "xnn_define_depthwise_convolution_2d");
        break;
      }
      case Op::kAdd:
      case Op::kMultiply: {
        size_t rank = g_.tensors[n.output].shape.size() + 1;
        MOBILENET_CHECK(Operand(n.input, rank, &in), "xnn_define_tensor_value");
        MOBILENET_CHECK(Operand(n.input2, rank, &in2), "xnn_define_tensor_value");
        if (n.op == Op::kAdd) {
          MOBILENET_CHECK(
              xnn_define_add2(subgraph_.get(), n.output_min, n.output_max, in, in2, out, 0),
              "xnn_define_add2");
        } else {
          MOBILENET_CHECK(
              xnn_define_multiply2(subgraph_.get(), n.output_min, n.output_max, in, in2, out, 0),
              "xnn_define_multiply2");
        }
        break;
      }
      case Op::kClamp:
        MOBILENET_CHECK(xnn_define_clamp(subgraph_.get(), n.output_min, n.output_max, in, out, 0),
                        "xnn_define_clamp");
        break;
      case Op::kHardswish:
        MOBILENET_CHECK(xnn_define_hardswish(subgraph_.get(), in, out, 0), "xnn_define_hardswish");
        break;
      case Op::kSigmoid:
        MOBILENET_CHECK(xnn_define_sigmoid(subgraph_.get(), in, out, 0), "xnn_define_sigmoid");
        break;
      case Op::kSoftmax:
        MOBILENET_CHECK(xnn_define_softmax(subgraph_.get(), in, out, 0), "xnn_define_softmax");
        break;
      case Op::kGlobalAveragePool: {
#ifdef XNN_FLAG_KEEP_DIMS
        // Newer XNNPACK lowers this to a mean reduction: keep [N, 1, 1, C].
        const uint32_t flags = XNN_FLAG_KEEP_DIMS;
#else
        const uint32_t flags = 0;
#endif
        MOBILENET_CHECK(xnn_define_global_average_pooling_2d(subgraph_.get(), -INFINITY, INFINITY,
                                                             in, out, flags),
                        "xnn_define_global_average_pooling_2d");
        break;
      }
      case Op::kAveragePool2d:
        MOBILENET_CHECK(xnn_define_average_pooling_2d(subgraph_.get(), 0, 0, 0, 0, n.kernel[0],
                                                      n.kernel[1], n.stride[0], n.stride[1],
                                                      -INFINITY, INFINITY, in, out, 0),
                        "xnn_define_average_pooling_2d");
        break;
      case Op::kMaxPool2d:
        MOBILENET_CHECK(xnn_define_max_pooling_2d(subgraph_.get(), 0, 0, 0, 0, n.kernel[0],
                                                  n.kernel[1], n.stride[0], n.stride[1], 1, 1,
                                                  -INFINITY, INFINITY, in, out, 0),
                        "xnn_define_max_pooling_2d");
        break;
      case Op::kFullyConnected: {
        MOBILENET_CHECK(Static({n.output_channels, n.input_channels}, n.filter, &filter),
                        "xnn_define_tensor_value");
        if (n.bias)
          MOBILENET_CHECK(Static({n.output_channels}, n.bias, &bias), "xnn_define_tensor_value");
        MOBILENET_CHECK(xnn_define_fully_connected(subgraph_.get(), n.output_min, n.output_max, in,
                                                   filter, bias, out, 0),
                        "xnn_define_fully_connected");
        break;
      }
      case Op::kPad: {
        std::vector<size_t> pre(1, 0), post(1, 0);
        pre.insert(pre.end(), n.pre_padding.begin(), n.pre_padding.end());
        post.insert(post.end(), n.post_padding.begin(), n.post_padding.end());
        MOBILENET_CHECK(xnn_define_static_constant_pad(subgraph_.get(), pre.data(), post.data(),
                                                       n.pad_value, in, out, 0),
                        "xnn_define_static_constant_pad");
        break;
      }
      case Op::kReshape: {
        std::vector<size_t> dims = Batched(n.new_shape);
        MOBILENET_CHECK(
            xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(), in, out, 0),
            "xnn_define_static_reshape");
        break;
      }
    }
#undef MOBILENET_CHECK
    return {};
  }

  const GraphData& g_;
  uint32_t batch_;
  uint32_t output_;
  SubgraphPtr subgraph_;
  std::map<std::pair<uint32_t, size_t>, uint32_t> values_;
};

// Creates the runtime of nodes [0, count) (output: the last node's output).
xnn_status TryPrefix(const GraphData& g, uint32_t batch, size_t count, pthreadpool_t pool,
                     uint32_t flags) {
  SubgraphBuilder b(g, batch, g.nodes[count - 1].output);
  BuildResult r = b.Build(count);
  if (r.status != xnn_status_success) return r.status;
  SubgraphPtr sg = b.Take();
  xnn_runtime_t rt = nullptr;
  xnn_status s = xnn_create_runtime_v2(sg.get(), pool, flags, &rt);
  if (rt != nullptr) xnn_delete_runtime(rt);
  return s;
}

}  // namespace

int64_t CompiledModel::ExternalBytes() const {
  int64_t bytes = static_cast<int64_t>(weight_bytes);
  if (input) bytes += static_cast<int64_t>(input->bytes());
  if (output) bytes += static_cast<int64_t>(output->bytes());
  return bytes;
}

std::unique_ptr<CompiledModel> BuildModel(const GraphData& g, uint32_t batch, uint32_t threads,
                                          uint32_t runtime_flags, CompileError* error) {
  auto fail = [&](xnn_status status, const std::string& message, const std::string& node) {
    error->status = status;
    error->message = message;
    error->node = node;
    return std::unique_ptr<CompiledModel>();
  };
  auto model = std::make_unique<CompiledModel>();
  model->batch = batch;
  model->threads = threads;
  if (threads > 1) {
    model->pool.reset(pthreadpool_create(threads));
    if (!model->pool) return fail(xnn_status_out_of_memory, "pthreadpool_create failed", "");
  }

  SubgraphBuilder builder(g, batch, static_cast<uint32_t>(g.output));
  BuildResult r = builder.Build(g.nodes.size());
  if (r.status != xnn_status_success) {
    std::string label = r.node >= 0 ? NodeLabel(g, static_cast<size_t>(r.node)) : std::string();
    return fail(r.status,
                "XNNPACK rejected " + (label.empty() ? std::string("the graph") : "node " + label) +
                    ": " + r.what + " failed",
                r.node >= 0 ? NodeId(g, static_cast<size_t>(r.node)) : std::string());
  }
  SubgraphPtr subgraph = builder.Take();
  xnn_runtime_t rt = nullptr;
  xnn_status s = xnn_create_runtime_v2(subgraph.get(), model->pool.get(), runtime_flags, &rt);
  subgraph.reset();
  if (s != xnn_status_success) {
    if (rt != nullptr) xnn_delete_runtime(rt);
    // Find the first node whose prefix XNNPACK rejects (prefixes fail monotonically).
    std::string label, node;
    size_t lo = 1, hi = g.nodes.size();
    if (hi > 0 && TryPrefix(g, batch, hi, model->pool.get(), runtime_flags) != xnn_status_success) {
      while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (TryPrefix(g, batch, mid, model->pool.get(), runtime_flags) != xnn_status_success)
          hi = mid;
        else
          lo = mid + 1;
      }
      label = NodeLabel(g, lo - 1);
      node = NodeId(g, lo - 1);
    }
    return fail(s,
                "XNNPACK rejected " + (label.empty() ? std::string("the graph") : "node " + label) +
                    ": xnn_create_runtime_v2 failed",
                node);
  }
  model->runtime.reset(rt);

  const TensorRecord& in = g.tensors[static_cast<size_t>(g.input)];
  const TensorRecord& out = g.tensors[static_cast<size_t>(g.output)];
  model->input_shape.push_back(batch);
  model->input_shape.insert(model->input_shape.end(), in.shape.begin(), in.shape.end());
  model->output_shape.push_back(batch);
  model->output_shape.insert(model->output_shape.end(), out.shape.begin(), out.shape.end());
  size_t in_size = 1, out_size = 1;
  for (size_t d : model->input_shape) in_size *= d;
  for (size_t d : model->output_shape) out_size *= d;
  model->input = std::make_unique<AlignedFloats>(in_size);
  model->output = std::make_unique<AlignedFloats>(out_size);

  // Keep every static buffer alive for the runtime's lifetime.
  for (const TensorRecord& t : g.tensors) {
    if (t.data) model->weights.push_back(t.data);
  }
  for (const NodeRecord& n : g.nodes) {
    if (n.filter) model->weights.push_back(n.filter);
    if (n.bias) model->weights.push_back(n.bias);
  }
  model->weight_bytes = g.weight_bytes;

  const xnn_external_value externals[2] = {
      {kInputExternalId, model->input->data()},
      {kOutputExternalId, model->output->data()},
  };
  s = xnn_setup_runtime(model->runtime.get(), 2, externals);
  if (s != xnn_status_success) {
    return fail(s, "XNNPACK could not set up the runtime: xnn_setup_runtime failed", "");
  }
  return model;
}

}  // namespace mobilenet
