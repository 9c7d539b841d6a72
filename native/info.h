// xnnpackInfo(): which XNNPACK the addon was built with, and the CPU.
#pragma once

#include <napi.h>

namespace mobilenet {

Napi::Value XnnpackInfo(const Napi::CallbackInfo& info);

}  // namespace mobilenet
