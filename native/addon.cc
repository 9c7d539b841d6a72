// Module registration only: XNNPACK is initialized once per process (the
// status is kept and reported on first use), the wrapped classes are
// registered and xnnpackInfo() and releaseFreeMemory() are exported.
#include <napi.h>
#include <xnnpack.h>

#include "common.h"
#include "graph.h"
#include "info.h"
#include "memory.h"
#include "runtime.h"

namespace mobilenet {

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  data->init_status = xnn_initialize(nullptr);  // idempotent; checked on use
  env.SetInstanceData<AddonData>(data);

  Napi::Function graph = Graph::Init(env);
  Napi::Function runtime = Runtime::Init(env);
  data->graph_constructor = Napi::Persistent(graph);
  data->runtime_constructor = Napi::Persistent(runtime);

  exports.Set("Graph", graph);
  exports.Set("Runtime", runtime);
  exports.Set("xnnpackInfo", Napi::Function::New<XnnpackInfo>(env, "xnnpackInfo"));
  exports.Set("releaseFreeMemory", Napi::Function::New<ReleaseFreeMemory>(env, "releaseFreeMemory"));
  return exports;
}

}  // namespace mobilenet

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return mobilenet::Init(env, exports);
}

NODE_API_MODULE(mobilenet_xnnpack, InitAddon)
