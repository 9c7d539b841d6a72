// Shared helpers of the addon: argument validation with the library's one
// error template ("Expected <what> for <name> but received <value>"),
// XNNPACK status names and errors, per-addon instance data.
#pragma once

#include <napi.h>
#include <xnnpack.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir.h"

namespace mobilenet {

// Per-environment data: constructors of the wrapped classes, init status.
struct AddonData {
  Napi::FunctionReference graph_constructor;
  Napi::FunctionReference runtime_constructor;
  xnn_status init_status = xnn_status_uninitialized;
};

AddonData& GetAddonData(Napi::Env env);

// A JS Error with `status` (and `node` when given), thrown as a C++ exception.
[[noreturn]] void ThrowXnnError(Napi::Env env, const std::string& message, xnn_status status,
                                const std::string& node = std::string());

// Throws if xnn_initialize failed at load time.
void RequireInitialized(Napi::Env env);

// "Expected <what> for <name> but received <value>"
std::string Describe(const Napi::Value& value);
[[noreturn]] void ThrowType(Napi::Env env, const std::string& what, const std::string& name,
                            const Napi::Value& value);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& what, const std::string& name,
                             const Napi::Value& value);
[[noreturn]] void ThrowRangeMessage(Napi::Env env, const std::string& message);

// Largest element count of one tensor (2^31 - 1 floats, 8 GiB).
constexpr uint64_t kMaxElements = (uint64_t{1} << 31) - 1;
// Largest single dimension / kernel / stride / padding value accepted.
constexpr uint32_t kMaxDim = 1u << 24;

// Validated readers. `name` is used in error messages.
uint32_t ToUint32(Napi::Env env, const Napi::Value& v, const std::string& name, uint32_t min,
                  uint32_t max);
double ToBound(Napi::Env env, const Napi::Value& v, const std::string& name);  // ±inf ok, NaN not
double ToFinite(Napi::Env env, const Napi::Value& v, const std::string& name);
bool ToBool(Napi::Env env, const Napi::Value& v, const std::string& name);
std::string ToString(Napi::Env env, const Napi::Value& v, const std::string& name);
Napi::Object ToObject(Napi::Env env, const Napi::Value& v, const std::string& name);
Napi::Float32Array ToFloat32Array(Napi::Env env, const Napi::Value& v, const std::string& name);
// An array of exactly `count` integers in [min, max] (count < 0: any length up to maxCount).
std::vector<uint32_t> ToUint32Array(Napi::Env env, const Napi::Value& v, const std::string& name,
                                    int count, uint32_t min, uint32_t max, size_t maxCount = 6);
// Product of dims with overflow and kMaxElements checks.
uint64_t CheckedProduct(Napi::Env env, const std::vector<size_t>& dims, const std::string& name);

}  // namespace mobilenet
