// Lowers a recorded GraphData to an XNNPACK subgraph for a fixed batch and
// creates its runtime (see subgraph.h).
#include "subgraph.h"

#include "ops.h"

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

class SubgraphBuilder : public DefineContext {
 public:
  SubgraphBuilder(const GraphData& g, uint32_t batch, uint32_t output,
                  std::vector<uint32_t> extra_outputs = {})
      : g_(g), batch_(batch), output_(output), extra_outputs_(std::move(extra_outputs)) {}

  // Defines nodes [0, count) with `output_` (then `extra_outputs_`) as the external outputs.
  BuildResult Build(size_t count) {
    xnn_subgraph_t raw = nullptr;
    xnn_status s = xnn_create_subgraph(static_cast<uint32_t>(2 + extra_outputs_.size()), 0, &raw);
    if (s != xnn_status_success) return {s, "xnn_create_subgraph", -1};
    subgraph_.reset(raw);
    if (output_ == g_.input) {
      // Identity graph (output() of the input): copy through a clamp to ±inf.
      uint32_t in = 0, out = 0;
      std::vector<size_t> dims = Batched(g_.tensors[output_].shape);
      s = Define(g_.tensors[output_], dims, nullptr, kInputExternalId, XNN_VALUE_FLAG_EXTERNAL_INPUT, &in);
      if (s != xnn_status_success) return {s, "xnn_define_tensor_value", -1};
      s = Define(g_.tensors[output_], dims, nullptr, kOutputExternalId, XNN_VALUE_FLAG_EXTERNAL_OUTPUT, &out);
      if (s != xnn_status_success) return {s, "xnn_define_tensor_value", -1};
      s = xnn_define_clamp(subgraph_.get(), -INFINITY, INFINITY, in, out, 0);
      if (s != xnn_status_success) return {s, "xnn_define_clamp", -1};
      return {};
    }
    // Only nodes the output depends on: a node whose result nothing reads
    // would get no buffer (Debian's 2022 XNNPACK then asserts at setup).
    std::vector<bool> live(g_.tensors.size(), false), needed(count, false);
    live[output_] = true;
    for (uint32_t id : extra_outputs_) live[id] = true;
    for (size_t i = count; i-- > 0;) {
      const NodeRecord& n = g_.nodes[i];
      if (!live[n.output]) continue;
      needed[i] = true;
      for (uint32_t id : n.inputs)
        if (id != kNoTensor) live[id] = true;
    }
    for (size_t i = 0; i < count; i++) {
      if (!needed[i]) continue;
      const char* what = "?";
      s = DefineNode(*this, g_.nodes[i], &what);
      if (s != xnn_status_success) return {s, what, static_cast<int64_t>(i)};
    }
    return {};
  }

  SubgraphPtr Take() { return std::move(subgraph_); }

  xnn_subgraph_t subgraph() override { return subgraph_.get(); }
  uint32_t batch() const override { return batch_; }
  const GraphData& graph() const override { return g_; }

  xnn_status Value(uint32_t tensor, uint32_t* id) override {
    const TensorRecord& t = g_.tensors[tensor];
    if (t.batched) return Activation(tensor, id);
    auto key = std::make_pair(tensor, size_t{0});
    auto it = values_.find(key);
    if (it != values_.end()) {
      *id = it->second;
      return xnn_status_success;
    }
    xnn_status s = Define(t, t.shape, t.data, XNN_INVALID_VALUE_ID, 0, id);
    if (s == xnn_status_success) values_[key] = *id;
    return s;
  }

  xnn_status Operand(uint32_t tensor, size_t rank, uint32_t* id) override {
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
      s = Define(t, dims, nullptr, XNN_INVALID_VALUE_ID, 0, id);
      if (s != xnn_status_success) return s;
      s = xnn_define_static_reshape(subgraph_.get(), dims.size(), dims.data(), source, *id, 0);
    } else {
      s = Define(t, dims, t.data, XNN_INVALID_VALUE_ID, 0, id, rank - own);
    }
    if (s == xnn_status_success) values_[key] = *id;
    return s;
  }

 private:
  std::vector<size_t> Batched(const std::vector<size_t>& shape) const {
    std::vector<size_t> dims;
    dims.reserve(shape.size() + 1);
    dims.push_back(batch_);
    dims.insert(dims.end(), shape.begin(), shape.end());
    return dims;
  }

  // Defines a value of t's dtype (quantization parameters included) with `dims`;
  // `axis_shift` moves the channel axis of per-channel types when dims were left-padded.
  xnn_status Define(const TensorRecord& t, const std::vector<size_t>& dims, const void* data,
                    uint32_t external, uint32_t flags, uint32_t* id, size_t axis_shift = 0) {
    switch (t.dtype) {
      case DType::kFloat32:
        return xnn_define_tensor_value(subgraph_.get(), xnn_datatype_fp32, dims.size(), dims.data(), data,
                                       external, flags, id);
      case DType::kQint8:
      case DType::kQint32:
        return xnn_define_quantized_tensor_value(
            subgraph_.get(), t.dtype == DType::kQint8 ? xnn_datatype_qint8 : xnn_datatype_qint32, t.zero_point,
            t.scales[0], dims.size(), dims.data(), data, external, flags, id);
      case DType::kQcint8:
      case DType::kQcint32:
        return xnn_define_channelwise_quantized_tensor_value(
            subgraph_.get(), t.dtype == DType::kQcint8 ? xnn_datatype_qcint8 : xnn_datatype_qcint32,
            t.scales.data(), dims.size(), t.channel_axis + axis_shift, dims.data(), data, external, flags, id);
    }
    return xnn_status_invalid_parameter;
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
    if (tensor == g_.input) {
      external = kInputExternalId;
      flags = XNN_VALUE_FLAG_EXTERNAL_INPUT;
    } else if (tensor == output_) {
      external = kOutputExternalId;
      flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
    } else {
      for (size_t k = 0; k < extra_outputs_.size(); k++) {
        if (extra_outputs_[k] == tensor) {
          external = kOutputExternalId + 1 + static_cast<uint32_t>(k);
          flags = XNN_VALUE_FLAG_EXTERNAL_OUTPUT;
        }
      }
    }
    const TensorRecord& t = g_.tensors[tensor];
    xnn_status s = Define(t, Batched(t.shape), nullptr, external, flags, id);
    if (s == xnn_status_success) values_[{tensor, 0}] = *id;
    return s;
  }

  const GraphData& g_;
  uint32_t batch_;
  uint32_t output_;
  std::vector<uint32_t> extra_outputs_;
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
  if (g.tensors[g.input].dtype != DType::kFloat32 || g.tensors[g.output].dtype != DType::kFloat32) {
    return fail(xnn_status_invalid_parameter, "the graph's input and output must be float32", "");
  }
  for (const TensorRecord& t : g.tensors) {
    if (!t.batched) continue;
    uint64_t elements = batch;
    for (size_t d : t.shape) {
      elements *= d;  // d < 2^24, elements <= 2^31 before: no overflow
      if (elements > kMaxElements) {
        return fail(xnn_status_invalid_parameter,
                    "a tensor of shape " + ShapeString(t.shape) + " with batch " + std::to_string(batch) +
                        " has more than " + std::to_string(kMaxElements) + " elements",
                    "");
      }
    }
  }
  auto model = std::make_unique<CompiledModel>();
  model->batch = batch;
  model->threads = threads;
  if (threads > 1) {
    model->pool.reset(pthreadpool_create(threads));
    if (!model->pool) return fail(xnn_status_out_of_memory, "pthreadpool_create failed", "");
  }

  SubgraphBuilder builder(g, batch, g.output, g.extra_outputs);
  BuildResult r = builder.Build(g.nodes.size());
  if (r.status != xnn_status_success) {
    std::string label = r.node >= 0 ? NodeLabel(g, static_cast<size_t>(r.node)) : std::string();
    return fail(r.status,
                "XNNPACK rejected " + (label.empty() ? std::string("the graph") : "node " + label) +
                    ": " + r.what + (r.what.rfind("needs ", 0) == 0 ? "" : " failed"),
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

  const TensorRecord& in = g.tensors[g.input];
  const TensorRecord& out = g.tensors[g.output];
  model->input_shape.push_back(batch);
  model->input_shape.insert(model->input_shape.end(), in.shape.begin(), in.shape.end());
  model->output_shape.push_back(batch);
  model->output_shape.insert(model->output_shape.end(), out.shape.begin(), out.shape.end());
  size_t in_size = 1, out_size = 1;
  for (size_t d : model->input_shape) in_size *= d;
  for (size_t d : model->output_shape) out_size *= d;
  // The extra outputs follow the output in one buffer, each [batch, ...shape].
  std::vector<size_t> extra_offsets;
  size_t total = out_size;
  for (uint32_t id : g.extra_outputs) {
    extra_offsets.push_back(total);
    size_t n = batch;
    for (size_t d : g.tensors[id].shape) n *= d;
    total += n;
  }
  model->input = std::make_unique<AlignedFloats>(in_size);
  model->output = std::make_unique<AlignedFloats>(total);

  // Keep the static data alive for the runtime's lifetime.
  model->blob = g.blob;
  model->weight_bytes = g.weight_bytes;

  std::vector<xnn_external_value> externals = {
      {kInputExternalId, model->input->data()},
      {kOutputExternalId, model->output->data()},
  };
  for (size_t k = 0; k < extra_offsets.size(); k++) {
    externals.push_back(
        {kOutputExternalId + 1 + static_cast<uint32_t>(k), model->output->data() + extra_offsets[k]});
  }
  s = xnn_setup_runtime(model->runtime.get(), externals.size(), externals.data());
  if (s != xnn_status_success) {
    return fail(s, "XNNPACK could not set up the runtime: xnn_setup_runtime failed", "");
  }
  return model;
}

}  // namespace mobilenet
