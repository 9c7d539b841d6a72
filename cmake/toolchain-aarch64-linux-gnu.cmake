# Cross-compiles for linux-arm64 (aarch64, glibc) on an x86-64 Debian 12 host
# with Debian's g++-aarch64-linux-gnu (apt-get install g++-aarch64-linux-gnu).
# Used by `npm run prebuild` for both the XNNPACK build and the addon
# (scripts/build-native.mjs passes it as CMAKE_TOOLCHAIN_FILE).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_ASM_COMPILER aarch64-linux-gnu-gcc)

# Headers and libraries of the target come from the cross toolchain's sysroot
# (Debian's libc6-dev-arm64-cross); programs (python3, ninja) from the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
