#include "memory.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace mobilenet {

namespace {

class TrimWorker : public Napi::AsyncWorker {
 public:
  explicit TrimWorker(Napi::Env env)
      : Napi::AsyncWorker(env, "mobilenet-xnnpack:trim"), deferred_(Napi::Promise::Deferred::New(env)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
#if defined(__GLIBC__)
    released_ = malloc_trim(0) != 0;
#endif
  }

  void OnOK() override { deferred_.Resolve(Napi::Boolean::New(Env(), released_)); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  bool released_ = false;
};

}  // namespace

Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
  auto* worker = new TrimWorker(info.Env());
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace mobilenet
