#include "common.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <sstream>

namespace mobilenet {

AddonData& GetAddonData(Napi::Env env) { return *env.GetInstanceData<AddonData>(); }

void ThrowXnnError(Napi::Env env, const std::string& message, xnn_status status,
                   const std::string& node) {
  Napi::Error error = Napi::Error::New(env, message + " (" + StatusName(status) + ")");
  error.Value().Set("status", Napi::String::New(env, StatusName(status)));
  if (!node.empty()) error.Value().Set("node", Napi::String::New(env, node));
  throw error;
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

double ToBound(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) ThrowType(env, "number", name, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (std::isnan(d)) ThrowRange(env, "number", name, v);
  return d;
}

double ToFinite(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsNumber()) ThrowType(env, "finite number", name, v);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) ThrowRange(env, "finite number", name, v);
  return d;
}

bool ToBool(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsBoolean()) ThrowType(env, "boolean", name, v);
  return v.As<Napi::Boolean>().Value();
}

std::string ToString(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsString()) ThrowType(env, "string", name, v);
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.size() > 1024) s = s.substr(0, 1024);
  return s;
}

Napi::Object ToObject(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsObject() || v.IsArray() || v.IsFunction()) ThrowType(env, "object", name, v);
  return v.As<Napi::Object>();
}

Napi::Float32Array ToFloat32Array(Napi::Env env, const Napi::Value& v, const std::string& name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    ThrowType(env, "Float32Array", name, v);
  }
  return v.As<Napi::Float32Array>();
}

std::vector<uint32_t> ToUint32Array(Napi::Env env, const Napi::Value& v, const std::string& name,
                                    int count, uint32_t min, uint32_t max, size_t maxCount) {
  std::string what = count >= 0
                         ? "array of " + std::to_string(count) + " integers in [" +
                               std::to_string(min) + ", " + std::to_string(max) + "]"
                         : "array of at most " + std::to_string(maxCount) + " integers in [" +
                               std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v.IsArray()) ThrowType(env, what, name, v);
  Napi::Array a = v.As<Napi::Array>();
  uint32_t n = a.Length();
  if ((count >= 0 && n != static_cast<uint32_t>(count)) || (count < 0 && n > maxCount)) {
    ThrowRange(env, what, name, v);
  }
  std::vector<uint32_t> out;
  out.reserve(n);
  for (uint32_t i = 0; i < n; i++) {
    Napi::Value e = a.Get(i);
    if (!e.IsNumber()) ThrowType(env, what, name, v);
    double d = e.As<Napi::Number>().DoubleValue();
    if (!std::isfinite(d) || d != std::floor(d) || d < min || d > max)
      ThrowRange(env, what, name, v);
    out.push_back(static_cast<uint32_t>(d));
  }
  return out;
}

uint64_t CheckedProduct(Napi::Env env, const std::vector<size_t>& dims, const std::string& name) {
  uint64_t p = 1;
  for (size_t d : dims) {
    if (d == 0)
      ThrowRangeMessage(env, "Expected positive dimensions for " + name + " but received 0");
    if (p > kMaxElements / d) {
      ThrowRangeMessage(env, "Expected at most " + std::to_string(kMaxElements) + " elements for " +
                                 name + " but received more");
    }
    p *= d;
  }
  return p;
}

}  // namespace mobilenet
