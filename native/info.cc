#include "info.h"

#include <xnnpack.h>

#if defined(MOBILENET_HAVE_CPUINFO)
#include <cpuinfo.h>
#endif

#include "common.h"
#include "ops.h"

namespace mobilenet {

Napi::Value XnnpackInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
#if defined(MOBILENET_XNNPACK_VENDORED)
  o.Set("source", "vendored");
  o.Set("commit", MOBILENET_XNNPACK_COMMIT);
#else
  o.Set("source", "system");
  if (std::string(MOBILENET_XNNPACK_VERSION).size() > 0)
    o.Set("version", MOBILENET_XNNPACK_VERSION);
#endif
  o.Set("napiVersion", NAPI_VERSION);
  // int8 (QS8) operators beyond those both builds have (lib/quantize falls back to float for the others).
  Napi::Object int8 = Napi::Object::New(env);
  int8.Set("hardswish", static_cast<bool>(MOBILENET_HAVE_QS8_HARDSWISH));
  int8.Set("fullyConnected", static_cast<bool>(MOBILENET_HAVE_QS8_FULLY_CONNECTED));
  o.Set("int8", int8);
  o.Set("initialized", GetAddonData(env).init_status == xnn_status_success);
  if (GetAddonData(env).init_status != xnn_status_success) {
    o.Set("initStatus", StatusName(GetAddonData(env).init_status));
  }
#if defined(MOBILENET_HAVE_CPUINFO)
  if (cpuinfo_initialize()) {
    Napi::Object cpu = Napi::Object::New(env);
    const cpuinfo_package* pkg = cpuinfo_get_package(0);
    if (pkg != nullptr) cpu.Set("name", pkg->name);
    cpu.Set("cores", cpuinfo_get_cores_count());
    cpu.Set("processors", cpuinfo_get_processors_count());
    Napi::Array features = Napi::Array::New(env);
    uint32_t n = 0;
    auto add = [&](bool has, const char* name) {
      if (has) features.Set(n++, name);
    };
#if CPUINFO_ARCH_X86 || CPUINFO_ARCH_X86_64
    add(cpuinfo_has_x86_sse2(), "sse2");
    add(cpuinfo_has_x86_sse4_1(), "sse4.1");
    add(cpuinfo_has_x86_avx(), "avx");
    add(cpuinfo_has_x86_f16c(), "f16c");
    add(cpuinfo_has_x86_fma3(), "fma3");
    add(cpuinfo_has_x86_avx2(), "avx2");
    add(cpuinfo_has_x86_avx512f(), "avx512f");
    add(cpuinfo_has_x86_avx512bw(), "avx512bw");
    add(cpuinfo_has_x86_avx512vnni(), "avx512vnni");
#elif CPUINFO_ARCH_ARM || CPUINFO_ARCH_ARM64
    add(cpuinfo_has_arm_neon(), "neon");
    add(cpuinfo_has_arm_neon_fma(), "neon-fma");
    add(cpuinfo_has_arm_neon_fp16_arith(), "neon-fp16-arith");
    add(cpuinfo_has_arm_neon_dot(), "neon-dot");
#endif
    cpu.Set("features", features);
    o.Set("cpu", cpu);
  }
#endif
  return o;
}

}  // namespace mobilenet
