#include "common.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>

namespace mobilenet {

AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

Napi::Error XnnError(Napi::Env env, const std::string& message, xnn_status status,
                     const std::string& node) {
  Napi::Error error = Napi::Error::New(env, message + " (" + StatusName(status) + ")");
  error.Value().Set("status", Napi::String::New(env, StatusName(status)));
  if (!node.empty()) error.Value().Set("node", Napi::String::New(env, node));
  return error;
}

void ThrowXnnError(Napi::Env env, const std::string& message, xnn_status status,
                   const std::string& node) {
  throw XnnError(env, message, status, node);
}

Napi::Error CodedError(Napi::Env env, const std::string& message, const char* code) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Value().Set("code", Napi::String::New(env, code));
  return e;
}

void ThrowSafely(napi_env env, const Napi::Error& e) noexcept {
  try {
    napi_value value = e.Value();
    if (value != nullptr) (void)napi_throw(env, value);
  } catch (...) {
    // The environment is going away: nobody is left to catch it.
  }
}

void AdjustExternal(napi_env env, int64_t delta) {
  int64_t ignored = 0;
  (void)napi_adjust_external_memory(env, delta, &ignored);
}

void RequireInitialized(Napi::Env env) {
  xnn_status status = GetAddonData(env).init_status;
  if (status != xnn_status_success) {
    ThrowXnnError(env, "XNNPACK failed to initialize (is this CPU supported?)", status);
  }
}

std::string Describe(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? "true" : "false";
  if (value.IsNumber()) {
    double d = value.As<Napi::Number>().DoubleValue();
    if (std::isnan(d)) return "NaN";
    if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
    if (d == std::floor(d) && std::fabs(d) < 1e21) {
      std::ostringstream s;
      s.precision(0);
      s << std::fixed << d;
      return s.str();
    }
    std::ostringstream s;
    s.precision(17);
    s << d;
    return s.str();
  }
  if (value.IsString()) {
    std::string str = value.As<Napi::String>().Utf8Value();
    if (str.size() > 40) str = str.substr(0, 40) + "…";
    return "\"" + str + "\"";
  }
  if (value.IsTypedArray()) {
    Napi::TypedArray t = value.As<Napi::TypedArray>();
    const char* kind = "TypedArray";
    switch (t.TypedArrayType()) {
      case napi_float32_array:
        kind = "Float32Array";
        break;
      case napi_float64_array:
        kind = "Float64Array";
        break;
      case napi_uint8_array:
        kind = "Uint8Array";
        break;
      case napi_int32_array:
        kind = "Int32Array";
        break;
      default:
        break;
    }
    return std::string(kind) + "(" + std::to_string(t.ElementLength()) + ")";
  }
  if (value.IsArray()) return "Array(" + std::to_string(value.As<Napi::Array>().Length()) + ")";
  if (value.IsFunction()) return "function";
  if (value.IsSymbol()) return "symbol";
  if (value.IsBigInt()) return "bigint";
  if (value.IsObject()) return "object";
  return "value";
}

static std::string Message(const std::string& what, const std::string& name,
                           const Napi::Value& value) {
  return "Expected " + what + " for " + name + " but received " + Describe(value);
}

void ThrowType(Napi::Env env, const std::string& what, const std::string& name,
               const Napi::Value& value) {
  throw Napi::TypeError::New(env, Message(what, name, value));
}

void ThrowRange(Napi::Env env, const std::string& what, const std::string& name,
                const Napi::Value& value) {
  throw Napi::RangeError::New(env, Message(what, name, value));
}

void ThrowRangeMessage(Napi::Env env, const std::string& message) {
  throw Napi::RangeError::New(env, message);
}

uint32_t ToUint32(Napi::Env env, const Napi::Value& v, const std::string& name, uint32_t min,
                  uint32_t max) {
  std::string what = "integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v.IsNumber()) ThrowType(env, what, name, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max) ThrowRange(env, what, name, v);
  return static_cast<uint32_t>(d);
}

Napi::Float32Array ToFloat32Array(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowType(env, "Float32Array", name, v);
  }
  return v.As<Napi::Float32Array>();
}

}  // namespace mobilenet
