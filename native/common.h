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

// A JS Error with `status` (and `node` when given).
Napi::Error XnnError(Napi::Env env, const std::string& message, xnn_status status,
                     const std::string& node = std::string());
[[noreturn]] void ThrowXnnError(Napi::Env env, const std::string& message, xnn_status status,
                                const std::string& node = std::string());
// A JS Error with `code` (e.g. 'ERR_GRAPH_FORMAT', 'ERR_DISPOSED', 'ERR_BUSY').
Napi::Error CodedError(Napi::Env env, const std::string& message, const char* code);

// napi_adjust_external_memory, ignoring failures (safe in finalizers and at teardown).
void AdjustExternal(napi_env env, int64_t delta);

// Throws if xnn_initialize failed at load time.
void RequireInitialized(Napi::Env env);

// "Expected <what> for <name> but received <value>"
std::string Describe(const Napi::Value& value);
[[noreturn]] void ThrowType(Napi::Env env, const std::string& what, const std::string& name,
                            const Napi::Value& value);
[[noreturn]] void ThrowRange(Napi::Env env, const std::string& what, const std::string& name,
                             const Napi::Value& value);
[[noreturn]] void ThrowRangeMessage(Napi::Env env, const std::string& message);


// Validated readers. `name` is used in error messages.
uint32_t ToUint32(Napi::Env env, const Napi::Value& v, const std::string& name, uint32_t min,
                  uint32_t max);
Napi::Float32Array ToFloat32Array(Napi::Env env, const Napi::Value& v, const std::string& name);

}  // namespace mobilenet
