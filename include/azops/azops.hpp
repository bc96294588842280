// azops/azops.hpp — the whole toolkit in one include.
//
// Everything here needs only the standard library, POSIX and nlohmann/json. The HTTP server needs
// cpp-httplib as well; it is included when AZOPS_WITH_SERVER is defined to 1 (the azops::server
// CMake target and meson's azops_server_dep define it), so a program that only writes status does
// not need cpp-httplib at all.
#pragma once

#include <azops/version.hpp>
#include <azops/log_tail.hpp>
#include <azops/status.hpp>
#include <azops/status_writer.hpp>
#include <azops/process.hpp>
#include <azops/docker_parser.hpp>
#include <azops/boot_parser.hpp>
#include <azops/waa_parser.hpp>
#include <azops/cost.hpp>
#include <azops/history.hpp>
#include <azops/eta.hpp>
#include <azops/tracker.hpp>
#include <azops/azure.hpp>
#include <azops/browser.hpp>

#if defined(AZOPS_WITH_SERVER) && AZOPS_WITH_SERVER
#include <azops/server.hpp>
#endif
