// azops/version.hpp — the library's version, the single source for CMake and meson.
// Thread-safety: constants only. Errors: none.
#pragma once

#define AZOPS_VERSION_MAJOR 0
#define AZOPS_VERSION_MINOR 1
#define AZOPS_VERSION_PATCH 0
#define AZOPS_VERSION (AZOPS_VERSION_MAJOR * 10000 + AZOPS_VERSION_MINOR * 100 + AZOPS_VERSION_PATCH)
#define AZOPS_VERSION_STRING "0.1.0"
