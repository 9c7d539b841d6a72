// Generated from lib/schema.ts by scripts/gen-native-schema.ts: do not edit.
// The op schema as a C++ table: what native/format.cc checks every node record against.
#pragma once

#include <cstdint>

namespace mobilenet {

enum class DType : uint8_t {
  kFloat32 = 0,
  kQint8 = 1,
  kQcint8 = 2,
  kQint32 = 3,
  kQcint32 = 4,
};
constexpr uint32_t kDTypeCount = 5;
constexpr uint32_t kDTypeFloat32Bit = 1u << 0;
constexpr uint32_t kDTypeQint8Bit = 1u << 1;
constexpr uint32_t kDTypeQcint8Bit = 1u << 2;
constexpr uint32_t kDTypeQint32Bit = 1u << 3;
constexpr uint32_t kDTypeQcint32Bit = 1u << 4;
constexpr const char* kDTypeNames[kDTypeCount] = {"float32", "qint8", "qcint8", "qint32", "qcint32"};

// Largest per-sample rank; integer attribute values are at most kMaxU32Attr.
constexpr uint32_t kMaxRank = 6;
constexpr uint32_t kMaxU32Attr = 16777216;
constexpr uint32_t kMaxInputs = 3;
constexpr uint32_t kMaxAttrs = 9;
// Largest single dimension and element count of one tensor (MAX_DIM, MAX_ELEMENTS).
constexpr uint32_t kMaxDim = 16777216u;
constexpr uint64_t kMaxElements = 2147483647u;

enum class Op : uint32_t {
  kConv2d = 0,
  kDepthwiseConv2d = 1,
  kAdd = 2,
  kMultiply = 3,
  kClamp = 4,
  kHardswish = 5,
  kSigmoid = 6,
  kSoftmax = 7,
  kGlobalAveragePool = 8,
  kAveragePool2d = 9,
  kMaxPool2d = 10,
  kFullyConnected = 11,
  kPad = 12,
  kReshape = 13,
  kConvert = 14,
  kLeakyRelu = 15,
};
constexpr uint32_t kOpCount = 16;

enum class AttrType : uint8_t { kU32, kU32Array, kU32List, kF32, kF32Finite };
enum InputKind : uint8_t { kActivation = 1, kConstant = 2 };

struct InputSpec {
  const char* name;
  uint8_t kinds;    // InputKind bits
  uint32_t dtypes;  // kDType*Bit
  bool optional;
  bool variadic;
};
struct AttrSpec {
  const char* name;
  AttrType type;
  uint32_t count;  // values (kU32Array: exactly; kU32List: any up to kMaxRank)
  uint32_t min;    // integer types
  uint32_t max;
};
struct OpSpec {
  const char* name;
  uint32_t input_count;
  InputSpec inputs[kMaxInputs];
  uint32_t attr_count;
  AttrSpec attrs[kMaxAttrs];
  uint32_t output_dtypes;
};

// Indexed by op code.
inline constexpr OpSpec kOpSpecs[kOpCount] = {
    {"conv2d",
     3,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}, {"filter", kConstant, kDTypeFloat32Bit | kDTypeQcint8Bit, false, false}, {"bias", kConstant, kDTypeFloat32Bit | kDTypeQcint32Bit, true, false}},
     9,
     {{"kernel", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"stride", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"dilation", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"padding", AttrType::kU32Array, 4, 0, kMaxU32Attr},
      {"groups", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"groupInputChannels", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"groupOutputChannels", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"outputMin", AttrType::kF32, 1, 0, 0},
      {"outputMax", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"depthwiseConv2d",
     3,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}, {"filter", kConstant, kDTypeFloat32Bit | kDTypeQcint8Bit, false, false}, {"bias", kConstant, kDTypeFloat32Bit | kDTypeQcint32Bit, true, false}},
     8,
     {{"kernel", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"stride", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"dilation", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"padding", AttrType::kU32Array, 4, 0, kMaxU32Attr},
      {"inputChannels", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"depthMultiplier", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"outputMin", AttrType::kF32, 1, 0, 0},
      {"outputMax", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"add",
     2,
     {{"a", kActivation | kConstant, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}, {"b", kActivation | kConstant, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     2,
     {{"outputMin", AttrType::kF32, 1, 0, 0},
      {"outputMax", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"multiply",
     2,
     {{"a", kActivation | kConstant, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}, {"b", kActivation | kConstant, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     2,
     {{"outputMin", AttrType::kF32, 1, 0, 0},
      {"outputMax", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"clamp",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     2,
     {{"min", AttrType::kF32, 1, 0, 0},
      {"max", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"hardswish",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     0,
     {},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"sigmoid",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     0,
     {},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"softmax",
     1,
     {{"input", kActivation, kDTypeFloat32Bit, false, false}},
     0,
     {},
     kDTypeFloat32Bit},
    {"globalAveragePool",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     0,
     {},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"averagePool2d",
     1,
     {{"input", kActivation, kDTypeFloat32Bit, false, false}},
     2,
     {{"pool", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"stride", AttrType::kU32Array, 2, 1, kMaxU32Attr}},
     kDTypeFloat32Bit},
    {"maxPool2d",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     2,
     {{"pool", AttrType::kU32Array, 2, 1, kMaxU32Attr},
      {"stride", AttrType::kU32Array, 2, 1, kMaxU32Attr}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"fullyConnected",
     3,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}, {"weights", kConstant, kDTypeFloat32Bit | kDTypeQcint8Bit, false, false}, {"bias", kConstant, kDTypeFloat32Bit | kDTypeQcint32Bit, true, false}},
     4,
     {{"inputChannels", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"outputChannels", AttrType::kU32, 1, 1, kMaxU32Attr},
      {"outputMin", AttrType::kF32, 1, 0, 0},
      {"outputMax", AttrType::kF32, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"pad",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     3,
     {{"prePadding", AttrType::kU32List, 0, 0, kMaxU32Attr},
      {"postPadding", AttrType::kU32List, 0, 0, kMaxU32Attr},
      {"value", AttrType::kF32Finite, 1, 0, 0}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"reshape",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     1,
     {{"shape", AttrType::kU32List, 0, 1, kMaxU32Attr}},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"convert",
     1,
     {{"input", kActivation, kDTypeFloat32Bit | kDTypeQint8Bit, false, false}},
     0,
     {},
     kDTypeFloat32Bit | kDTypeQint8Bit},
    {"leakyRelu",
     1,
     {{"input", kActivation, kDTypeFloat32Bit, false, false}},
     1,
     {{"alpha", AttrType::kF32Finite, 1, 0, 0}},
     kDTypeFloat32Bit},
};

// Input slots and attribute indices by op, for native/ops.cc: schema::conv2d::kInFilter, schema::conv2d::kStride.
namespace schema {
namespace conv2d {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kInFilter = 1;
constexpr uint32_t kInBias = 2;
constexpr uint32_t kKernel = 0;
constexpr uint32_t kStride = 1;
constexpr uint32_t kDilation = 2;
constexpr uint32_t kPadding = 3;
constexpr uint32_t kGroups = 4;
constexpr uint32_t kGroupInputChannels = 5;
constexpr uint32_t kGroupOutputChannels = 6;
constexpr uint32_t kOutputMin = 7;
constexpr uint32_t kOutputMax = 8;
}  // namespace conv2d
namespace depthwiseConv2d {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kInFilter = 1;
constexpr uint32_t kInBias = 2;
constexpr uint32_t kKernel = 0;
constexpr uint32_t kStride = 1;
constexpr uint32_t kDilation = 2;
constexpr uint32_t kPadding = 3;
constexpr uint32_t kInputChannels = 4;
constexpr uint32_t kDepthMultiplier = 5;
constexpr uint32_t kOutputMin = 6;
constexpr uint32_t kOutputMax = 7;
}  // namespace depthwiseConv2d
namespace add {
constexpr uint32_t kInA = 0;
constexpr uint32_t kInB = 1;
constexpr uint32_t kOutputMin = 0;
constexpr uint32_t kOutputMax = 1;
}  // namespace add
namespace multiply {
constexpr uint32_t kInA = 0;
constexpr uint32_t kInB = 1;
constexpr uint32_t kOutputMin = 0;
constexpr uint32_t kOutputMax = 1;
}  // namespace multiply
namespace clamp {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kMin = 0;
constexpr uint32_t kMax = 1;
}  // namespace clamp
namespace hardswish {
constexpr uint32_t kInInput = 0;
}  // namespace hardswish
namespace sigmoid {
constexpr uint32_t kInInput = 0;
}  // namespace sigmoid
namespace softmax {
constexpr uint32_t kInInput = 0;
}  // namespace softmax
namespace globalAveragePool {
constexpr uint32_t kInInput = 0;
}  // namespace globalAveragePool
namespace averagePool2d {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kPool = 0;
constexpr uint32_t kStride = 1;
}  // namespace averagePool2d
namespace maxPool2d {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kPool = 0;
constexpr uint32_t kStride = 1;
}  // namespace maxPool2d
namespace fullyConnected {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kInWeights = 1;
constexpr uint32_t kInBias = 2;
constexpr uint32_t kInputChannels = 0;
constexpr uint32_t kOutputChannels = 1;
constexpr uint32_t kOutputMin = 2;
constexpr uint32_t kOutputMax = 3;
}  // namespace fullyConnected
namespace pad {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kPrePadding = 0;
constexpr uint32_t kPostPadding = 1;
constexpr uint32_t kValue = 2;
}  // namespace pad
namespace reshape {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kShape = 0;
}  // namespace reshape
namespace convert {
constexpr uint32_t kInInput = 0;
}  // namespace convert
namespace leakyRelu {
constexpr uint32_t kInInput = 0;
constexpr uint32_t kAlpha = 0;
}  // namespace leakyRelu
}  // namespace schema

}  // namespace mobilenet
