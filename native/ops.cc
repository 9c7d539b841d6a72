// The C++ half of each op of the schema: its output-shape rule (must equal
// the schema's `infer` in lib/schema.ts: native/format.cc refuses a graph
// whose serialized shapes differ) and its XNNPACK define call.
#include "ops.h"

#include <cmath>

namespace mobilenet {

namespace {

using Shape = std::vector<size_t>;

uint64_t ConvOutputSize(uint64_t input, uint64_t kernel, uint64_t stride, uint64_t dilation,
                        uint64_t before, uint64_t after) {
  uint64_t effective = dilation * (kernel - 1) + 1;
  uint64_t padded = input + before + after;
  if (padded < effective) return 0;
  return (padded - effective) / stride + 1;
}

const TensorRecord& In(const GraphData& g, const NodeRecord& n, uint32_t slot) {
  return g.tensors[n.inputs[slot]];
}

std::string Rank3(const TensorRecord& x) {
  return x.shape.size() == 3 ? "" : "expected input of rank 3 (H, W, C) but received " + ShapeString(x.shape);
}

std::string Bounds(const NodeRecord& n, uint32_t lo, uint32_t hi) {
  return n.attrs[lo][0] < n.attrs[hi][0] ? "" : "expected outputMin < outputMax";
}

std::string Expect(const GraphData& g, const NodeRecord& n, uint32_t slot, const Shape& shape,
                   const char* name) {
  if (!n.Has(slot)) return "";
  const Shape& s = In(g, n, slot).shape;
  return s == shape ? "" : std::string("expected ") + name + " of shape " + ShapeString(shape) + " but received " + ShapeString(s);
}

// conv2d / depthwiseConv2d / pooling: [oh, ow] or an error.
std::string Window(const Shape& x, const NodeRecord& n, uint32_t kernel, uint32_t stride,
                   int dilation, int padding, size_t* oh, size_t* ow) {
  uint64_t d0 = dilation < 0 ? 1 : n.U32(dilation, 0), d1 = dilation < 0 ? 1 : n.U32(dilation, 1);
  uint64_t p[4] = {0, 0, 0, 0};
  if (padding >= 0)
    for (int k = 0; k < 4; k++) p[k] = n.U32(padding, k);
  *oh = ConvOutputSize(x[0], n.U32(kernel, 0), n.U32(stride, 0), d0, p[0], p[2]);
  *ow = ConvOutputSize(x[1], n.U32(kernel, 1), n.U32(stride, 1), d1, p[3], p[1]);
  if (*oh == 0 || *ow == 0) return "expected a window no larger than the padded input " + ShapeString(x);
  return "";
}

#define MOBILENET_TRY(expr)           \
  do {                                \
    std::string e_ = (expr);          \
    if (!e_.empty()) return e_;       \
  } while (0)

std::string InferConv2d(const GraphData& g, const NodeRecord& n, Shape* out) {
  namespace s = schema::conv2d;
  const TensorRecord& x = In(g, n, s::kInInput);
  MOBILENET_TRY(Rank3(x));
  uint64_t groups = n.U32(s::kGroups), gic = n.U32(s::kGroupInputChannels), goc = n.U32(s::kGroupOutputChannels);
  if (groups * gic != x.shape[2]) return "expected groups * groupInputChannels equal to the input's " + std::to_string(x.shape[2]) + " channels";
  if (groups * goc > kMaxDim) return "expected fewer output channels";
  size_t oc = groups * goc;
  MOBILENET_TRY(Expect(g, n, s::kInFilter, {oc, n.U32(s::kKernel, 0), n.U32(s::kKernel, 1), gic}, "filter"));
  MOBILENET_TRY(Expect(g, n, s::kInBias, {oc}, "bias"));
  MOBILENET_TRY(Bounds(n, s::kOutputMin, s::kOutputMax));
  size_t oh, ow;
  MOBILENET_TRY(Window(x.shape, n, s::kKernel, s::kStride, s::kDilation, s::kPadding, &oh, &ow));
  *out = {oh, ow, oc};
  return "";
}

std::string InferDepthwise(const GraphData& g, const NodeRecord& n, Shape* out) {
  namespace s = schema::depthwiseConv2d;
  const TensorRecord& x = In(g, n, s::kInInput);
  MOBILENET_TRY(Rank3(x));
  uint64_t c = n.U32(s::kInputChannels), m = n.U32(s::kDepthMultiplier);
  if (c != x.shape[2]) return "expected inputChannels equal to the input's " + std::to_string(x.shape[2]);
  if (c * m > kMaxDim) return "expected fewer output channels";
  size_t oc = c * m;
  MOBILENET_TRY(Expect(g, n, s::kInFilter, {1, n.U32(s::kKernel, 0), n.U32(s::kKernel, 1), oc}, "filter"));
  MOBILENET_TRY(Expect(g, n, s::kInBias, {oc}, "bias"));
  MOBILENET_TRY(Bounds(n, s::kOutputMin, s::kOutputMax));
  size_t oh, ow;
  MOBILENET_TRY(Window(x.shape, n, s::kKernel, s::kStride, s::kDilation, s::kPadding, &oh, &ow));
  *out = {oh, ow, oc};
  return "";
}

std::string InferBinary(const GraphData& g, const NodeRecord& n, Shape* out) {
  const TensorRecord& a = In(g, n, 0);
  const TensorRecord& b = In(g, n, 1);
  if (!a.batched && !b.batched) return "expected at least one activation tensor";
  size_t rank = std::max(a.shape.size(), b.shape.size());
  size_t batched_rank = std::max(a.batched ? a.shape.size() : 0, b.batched ? b.shape.size() : 0);
  if (rank > batched_rank) return "expected a constant of rank at most " + std::to_string(batched_rank);
  out->clear();
  for (size_t i = 0; i < rank; i++) {
    size_t da = i + a.shape.size() >= rank ? a.shape[i + a.shape.size() - rank] : 1;
    size_t db = i + b.shape.size() >= rank ? b.shape[i + b.shape.size() - rank] : 1;
    if (da != db && da != 1 && db != 1) return "expected broadcastable shapes but received " + ShapeString(a.shape) + " and " + ShapeString(b.shape);
    out->push_back(std::max(da, db));
  }
  return Bounds(n, 0, 1);
}

std::string InferClamp(const GraphData& g, const NodeRecord& n, Shape* out) {
  if (!(n.attrs[schema::clamp::kMin][0] < n.attrs[schema::clamp::kMax][0])) return "expected min < max";
  *out = In(g, n, 0).shape;
  return "";
}

std::string InferSame(const GraphData& g, const NodeRecord& n, Shape* out) {
  *out = In(g, n, 0).shape;
  return out->empty() ? "expected input of rank at least 1" : "";
}

std::string InferGlobalPool(const GraphData& g, const NodeRecord& n, Shape* out) {
  const TensorRecord& x = In(g, n, 0);
  MOBILENET_TRY(Rank3(x));
  *out = {1, 1, x.shape[2]};
  return "";
}

std::string InferPool(const GraphData& g, const NodeRecord& n, Shape* out) {
  // averagePool2d and maxPool2d share attribute indices (pool, stride).
  static_assert(schema::averagePool2d::kPool == schema::maxPool2d::kPool &&
                    schema::averagePool2d::kStride == schema::maxPool2d::kStride,
                "pooling attributes");
  const TensorRecord& x = In(g, n, 0);
  MOBILENET_TRY(Rank3(x));
  size_t oh, ow;
  MOBILENET_TRY(Window(x.shape, n, schema::maxPool2d::kPool, schema::maxPool2d::kStride, -1, -1, &oh, &ow));
  *out = {oh, ow, x.shape[2]};
  return "";
}

std::string InferFullyConnected(const GraphData& g, const NodeRecord& n, Shape* out) {
  namespace s = schema::fullyConnected;
  const TensorRecord& x = In(g, n, s::kInInput);
  if (x.shape.empty()) return "expected input of rank at least 1";
  size_t ic = n.U32(s::kInputChannels), oc = n.U32(s::kOutputChannels);
  if (ic != x.shape.back()) return "expected inputChannels equal to the input's last dimension " + std::to_string(x.shape.back());
  MOBILENET_TRY(Expect(g, n, s::kInWeights, {oc, ic}, "weights"));
  MOBILENET_TRY(Expect(g, n, s::kInBias, {oc}, "bias"));
  MOBILENET_TRY(Bounds(n, s::kOutputMin, s::kOutputMax));
  *out = x.shape;
  out->back() = oc;
  return "";
}

std::string InferPad(const GraphData& g, const NodeRecord& n, Shape* out) {
  namespace s = schema::pad;
  const Shape& x = In(g, n, s::kInInput).shape;
  if (n.attrs[s::kPrePadding].size() != x.size() || n.attrs[s::kPostPadding].size() != x.size()) {
    return "expected " + std::to_string(x.size()) + " pre- and post-padding values";
  }
  out->clear();
  for (size_t i = 0; i < x.size(); i++) {
    uint64_t d = uint64_t{x[i]} + n.U32(s::kPrePadding, i) + n.U32(s::kPostPadding, i);
    if (d > kMaxDim) return "expected a smaller padded dimension";
    out->push_back(d);
  }
  return "";
}

// The dtype rule of lib/schema.ts `checkNodeDtypes`: convert changes float32 <-> qint8; every
// other op reads and writes one activation dtype, and a qint8 conv / depthwise / fully connected
// takes qcint8 weights quantized along the output channel and a qcint32 bias.
std::string CheckDtypes(const GraphData& g, const NodeRecord& n) {
  const DType out = g.tensors[n.output].dtype;
  const DType in = In(g, n, 0).dtype;
  if (n.op == Op::kConvert) {
    return in != out ? "" : std::string("expected convert between float32 and qint8 but received ") + kDTypeNames[static_cast<uint32_t>(in)] + " -> " + kDTypeNames[static_cast<uint32_t>(out)];
  }
  const bool weighted = n.op == Op::kConv2d || n.op == Op::kDepthwiseConv2d || n.op == Op::kFullyConnected;
  for (uint32_t k = 0; k < n.inputs.size(); k++) {
    if (!n.Has(k)) continue;
    const TensorRecord& t = In(g, n, k);
    DType want = out;
    if (weighted && k == 1) want = out == DType::kQint8 ? DType::kQcint8 : DType::kFloat32;
    if (weighted && k == 2) want = out == DType::kQint8 ? DType::kQcint32 : DType::kFloat32;
    if (t.dtype != want) {
      return std::string("expected ") + kDTypeNames[static_cast<uint32_t>(want)] + " for input " + std::to_string(k) + " of a " +
             kDTypeNames[static_cast<uint32_t>(out)] + " node but received " + kDTypeNames[static_cast<uint32_t>(t.dtype)];
    }
    if (weighted && k >= 1 && out == DType::kQint8) {
      uint32_t axis = k == 2 || n.op != Op::kDepthwiseConv2d ? 0 : 3;
      if (t.channel_axis != axis) return "expected quantization axis " + std::to_string(axis) + " for input " + std::to_string(k);
    }
  }
  const bool pass = n.op == Op::kPad || n.op == Op::kReshape || n.op == Op::kMaxPool2d || n.op == Op::kClamp;
  if (pass && out == DType::kQint8) {
    const TensorRecord& x = In(g, n, 0);
    const TensorRecord& y = g.tensors[n.output];
    if (x.zero_point != y.zero_point || x.scales != y.scales) return "expected the qint8 output to keep the input's scale and zero point";
  }
  return "";
}

std::string InferReshape(const GraphData& g, const NodeRecord& n, Shape* out) {
  const Shape& x = In(g, n, schema::reshape::kInInput).shape;
  *out = n.Sizes(schema::reshape::kShape);
  uint64_t a = 1, b = 1;
  for (size_t d : x) a *= d;
  for (size_t d : *out) {
    b *= d;
    if (b > kMaxElements) return "expected a shape with " + std::to_string(a) + " elements";
  }
  if (out->empty() || a != b) return "expected a shape with " + std::to_string(a) + " elements";
  return "";
}

// ---------------------------------------------------------------------------
// XNNPACK define calls.
// ---------------------------------------------------------------------------

#define MOBILENET_XNN(call, name) \
  do {                            \
    xnn_status s_ = (call);       \
    if (s_ != xnn_status_success) { \
      *what = name;               \
      return s_;                  \
    }                             \
  } while (0)

// A qint8 node this XNNPACK has no kernel for: the message names the build that has one.
#define MOBILENET_NEEDS_VENDORED(op_text)                                                                 \
  do {                                                                                                    \
    if (c.graph().tensors[n.output].dtype == DType::kQint8) {                                             \
      *what = "needs the vendored XNNPACK build (Debian 12's libxnnpack-dev has no int8 " op_text          \
              "; build with MOBILENET_XNNPACK_ARCHIVES or downloads allowed, not MOBILENET_XNNPACK=system)"; \
      return xnn_status_unsupported_parameter;                                                            \
    }                                                                                                     \
  } while (0)

struct Values {
  uint32_t in = 0, filter = 0, bias = XNN_INVALID_VALUE_ID, out = 0;
};

// Values of input slots 0..2 (filter, bias when present) and the output.
xnn_status Common(DefineContext& c, const NodeRecord& n, bool weights, Values* v, const char** what) {
  MOBILENET_XNN(c.Value(n.inputs[0], &v->in), "xnn_define_tensor_value");
  if (weights) {
    MOBILENET_XNN(c.Value(n.inputs[1], &v->filter), "xnn_define_tensor_value");
    if (n.Has(2)) MOBILENET_XNN(c.Value(n.inputs[2], &v->bias), "xnn_define_tensor_value");
  }
  MOBILENET_XNN(c.Value(n.output, &v->out), "xnn_define_tensor_value");
  return xnn_status_success;
}

xnn_status DefineConv2d(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::conv2d;
  Values v;
  xnn_status st = Common(c, n, true, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_convolution_2d(
                    c.subgraph(), n.U32(s::kPadding, 0), n.U32(s::kPadding, 1), n.U32(s::kPadding, 2),
                    n.U32(s::kPadding, 3), n.U32(s::kKernel, 0), n.U32(s::kKernel, 1), n.U32(s::kStride, 0),
                    n.U32(s::kStride, 1), n.U32(s::kDilation, 0), n.U32(s::kDilation, 1), n.U32(s::kGroups),
                    n.U32(s::kGroupInputChannels), n.U32(s::kGroupOutputChannels), n.F32(s::kOutputMin),
                    n.F32(s::kOutputMax), v.in, v.filter, v.bias, v.out, 0),
                "xnn_define_convolution_2d");
  return xnn_status_success;
}

xnn_status DefineDepthwise(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::depthwiseConv2d;
  Values v;
  xnn_status st = Common(c, n, true, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_depthwise_convolution_2d(
                    c.subgraph(), n.U32(s::kPadding, 0), n.U32(s::kPadding, 1), n.U32(s::kPadding, 2),
                    n.U32(s::kPadding, 3), n.U32(s::kKernel, 0), n.U32(s::kKernel, 1), n.U32(s::kStride, 0),
                    n.U32(s::kStride, 1), n.U32(s::kDilation, 0), n.U32(s::kDilation, 1),
                    n.U32(s::kDepthMultiplier), n.U32(s::kInputChannels), n.F32(s::kOutputMin),
                    n.F32(s::kOutputMax), v.in, v.filter, v.bias, v.out, 0),
                "xnn_define_depthwise_convolution_2d");
  return xnn_status_success;
}

xnn_status DefineBinary(DefineContext& c, const NodeRecord& n, const char** what) {
  size_t rank = c.graph().tensors[n.output].shape.size() + 1;
  uint32_t a = 0, b = 0, out = 0;
  MOBILENET_XNN(c.Operand(n.inputs[0], rank, &a), "xnn_define_tensor_value");
  MOBILENET_XNN(c.Operand(n.inputs[1], rank, &b), "xnn_define_tensor_value");
  MOBILENET_XNN(c.Value(n.output, &out), "xnn_define_tensor_value");
  if (n.op == Op::kAdd) {
    MOBILENET_XNN(xnn_define_add2(c.subgraph(), n.F32(0), n.F32(1), a, b, out, 0), "xnn_define_add2");
  } else {
    MOBILENET_XNN(xnn_define_multiply2(c.subgraph(), n.F32(0), n.F32(1), a, b, out, 0), "xnn_define_multiply2");
  }
  return xnn_status_success;
}

xnn_status DefineClamp(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_clamp(c.subgraph(), n.F32(schema::clamp::kMin), n.F32(schema::clamp::kMax), v.in, v.out, 0),
                "xnn_define_clamp");
  return xnn_status_success;
}

xnn_status DefineHardswish(DefineContext& c, const NodeRecord& n, const char** what) {
#if !MOBILENET_HAVE_QS8_HARDSWISH
  MOBILENET_NEEDS_VENDORED("hard-swish");
#endif
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_hardswish(c.subgraph(), v.in, v.out, 0), "xnn_define_hardswish");
  return xnn_status_success;
}

xnn_status DefineSigmoid(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_sigmoid(c.subgraph(), v.in, v.out, 0), "xnn_define_sigmoid");
  return xnn_status_success;
}

xnn_status DefineSoftmax(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_softmax(c.subgraph(), v.in, v.out, 0), "xnn_define_softmax");
  return xnn_status_success;
}

xnn_status DefineGlobalPool(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
#ifdef XNN_FLAG_KEEP_DIMS
  // Newer XNNPACK lowers this to a mean reduction: keep [N, 1, 1, C].
  const uint32_t flags = XNN_FLAG_KEEP_DIMS;
#else
  const uint32_t flags = 0;
#endif
  MOBILENET_XNN(xnn_define_global_average_pooling_2d(c.subgraph(), -INFINITY, INFINITY, v.in, v.out, flags),
                "xnn_define_global_average_pooling_2d");
  return xnn_status_success;
}

xnn_status DefineAveragePool(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::averagePool2d;
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_average_pooling_2d(c.subgraph(), 0, 0, 0, 0, n.U32(s::kPool, 0), n.U32(s::kPool, 1),
                                              n.U32(s::kStride, 0), n.U32(s::kStride, 1), -INFINITY, INFINITY,
                                              v.in, v.out, 0),
                "xnn_define_average_pooling_2d");
  return xnn_status_success;
}

xnn_status DefineMaxPool(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::maxPool2d;
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_max_pooling_2d(c.subgraph(), 0, 0, 0, 0, n.U32(s::kPool, 0), n.U32(s::kPool, 1),
                                          n.U32(s::kStride, 0), n.U32(s::kStride, 1), 1, 1, -INFINITY, INFINITY,
                                          v.in, v.out, 0),
                "xnn_define_max_pooling_2d");
  return xnn_status_success;
}

xnn_status DefineFullyConnected(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::fullyConnected;
#if !MOBILENET_HAVE_QS8_FULLY_CONNECTED
  MOBILENET_NEEDS_VENDORED("fully connected");
#endif
  Values v;
  xnn_status st = Common(c, n, true, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_fully_connected(c.subgraph(), n.F32(s::kOutputMin), n.F32(s::kOutputMax), v.in, v.filter,
                                           v.bias, v.out, 0),
                "xnn_define_fully_connected");
  return xnn_status_success;
}

xnn_status DefinePad(DefineContext& c, const NodeRecord& n, const char** what) {
  namespace s = schema::pad;
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  std::vector<size_t> pre(1, 0), post(1, 0);
  for (double d : n.attrs[s::kPrePadding]) pre.push_back(static_cast<size_t>(d));
  for (double d : n.attrs[s::kPostPadding]) post.push_back(static_cast<size_t>(d));
  MOBILENET_XNN(xnn_define_static_constant_pad(c.subgraph(), pre.data(), post.data(), n.F32(s::kValue), v.in, v.out, 0),
                "xnn_define_static_constant_pad");
  return xnn_status_success;
}

xnn_status DefineReshape(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  std::vector<size_t> dims(1, c.batch());
  for (double d : n.attrs[schema::reshape::kShape]) dims.push_back(static_cast<size_t>(d));
  MOBILENET_XNN(xnn_define_static_reshape(c.subgraph(), dims.size(), dims.data(), v.in, v.out, 0),
                "xnn_define_static_reshape");
  return xnn_status_success;
}

xnn_status DefineConvert(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_convert(c.subgraph(), v.in, v.out, 0), "xnn_define_convert");
  return xnn_status_success;
}

xnn_status DefineLeakyRelu(DefineContext& c, const NodeRecord& n, const char** what) {
  Values v;
  xnn_status st = Common(c, n, false, &v, what);
  if (st != xnn_status_success) return st;
  MOBILENET_XNN(xnn_define_leaky_relu(c.subgraph(), n.F32(schema::leakyRelu::kAlpha), v.in, v.out, 0),
                "xnn_define_leaky_relu");
  return xnn_status_success;
}

#undef MOBILENET_XNN
#undef MOBILENET_TRY

struct OpImpl {
  Op op;
  std::string (*infer)(const GraphData&, const NodeRecord&, Shape*);
  xnn_status (*define)(DefineContext&, const NodeRecord&, const char**);
};

// Indexed by op code; the static_asserts below keep it complete and in order.
constexpr OpImpl kImpls[] = {
    {Op::kConv2d, InferConv2d, DefineConv2d},
    {Op::kDepthwiseConv2d, InferDepthwise, DefineDepthwise},
    {Op::kAdd, InferBinary, DefineBinary},
    {Op::kMultiply, InferBinary, DefineBinary},
    {Op::kClamp, InferClamp, DefineClamp},
    {Op::kHardswish, InferSame, DefineHardswish},
    {Op::kSigmoid, InferSame, DefineSigmoid},
    {Op::kSoftmax, InferSame, DefineSoftmax},
    {Op::kGlobalAveragePool, InferGlobalPool, DefineGlobalPool},
    {Op::kAveragePool2d, InferPool, DefineAveragePool},
    {Op::kMaxPool2d, InferPool, DefineMaxPool},
    {Op::kFullyConnected, InferFullyConnected, DefineFullyConnected},
    {Op::kPad, InferPad, DefinePad},
    {Op::kReshape, InferReshape, DefineReshape},
    {Op::kConvert, InferSame, DefineConvert},
    {Op::kLeakyRelu, InferSame, DefineLeakyRelu},
};
static_assert(sizeof(kImpls) / sizeof(kImpls[0]) == kOpCount, "native/ops.cc: one entry per op of the schema");

constexpr bool InOrder() {
  for (uint32_t i = 0; i < kOpCount; i++)
    if (static_cast<uint32_t>(kImpls[i].op) != i) return false;
  return true;
}
static_assert(InOrder(), "native/ops.cc: kImpls must be in op-code order");

}  // namespace

std::string InferShape(const GraphData& g, const NodeRecord& n, std::vector<size_t>* shape) {
  std::string e = CheckDtypes(g, n);
  if (!e.empty()) return e;
  return kImpls[static_cast<uint32_t>(n.op)].infer(g, n, shape);
}

xnn_status DefineNode(DefineContext& c, const NodeRecord& n, const char** what) {
  return kImpls[static_cast<uint32_t>(n.op)].define(c, n, what);
}

}  // namespace mobilenet
