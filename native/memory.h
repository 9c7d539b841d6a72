// releaseFreeMemory(): gives the memory the C heap holds but no one uses back
// to the operating system (glibc's malloc_trim), on a libuv worker thread.
// Loading a model allocates and frees tens of MB (decoded weights, the
// serialized graph, XNNPACK's packing buffers); glibc keeps freed blocks
// below its (dynamic) mmap threshold in its arenas, so without this the
// process's RSS stays as high as the load's peak.
#pragma once

#include <napi.h>

namespace mobilenet {

// Promise<boolean>: whether memory was released (false where there is no malloc_trim).
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info);

}  // namespace mobilenet
