// Shared helpers of the addon: argument validation with the library's one
// error template ("Expected <what> for <name> but received <value>"),
// XNNPACK status names and errors, per-addon instance data.
#pragma once

#include <napi.h>
#include <xnnpack.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
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

// Throws `e` into JS, or drops it when the environment cannot run JS any more
// (a terminating worker or process.exit()): never a C++ exception.
void ThrowSafely(napi_env env, const Napi::Error& e) noexcept;

// Runs a JS-facing method body; every exception becomes a pending JS exception
// here (node-addon-api's own rethrow would throw again, into std::terminate,
// while the environment is being torn down).
template <typename F>
Napi::Value Guarded(napi_env env, F&& body) noexcept {
  try {
    return body();
  } catch (const Napi::Error& e) {
    ThrowSafely(env, e);
  } catch (const std::bad_alloc&) {
    try {
      ThrowSafely(env, XnnError(Napi::Env(env), "Out of memory", xnn_status_out_of_memory));
    } catch (...) {
    }
  } catch (const std::exception& ex) {
    try {
      ThrowSafely(env, Napi::Error::New(Napi::Env(env), ex.what()));
    } catch (...) {
    }
  } catch (...) {
  }
  return Napi::Value();
}

// A member method wrapped in Guarded, for DefineClass: InstanceMethod<&T::template Safe<&T::Run>>.
#define MOBILENET_GUARDED_METHODS(T)                                  \
  template <Napi::Value (T::*M)(const Napi::CallbackInfo&)>           \
  Napi::Value Safe(const Napi::CallbackInfo& info) {                 \
    return Guarded(info.Env(), [&] { return (this->*M)(info); });    \
  }

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
