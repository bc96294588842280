// status_server — serve an azops status file written by another process, so that several people can
// watch one operation from their browsers.
//
//   status_server [--status-file PATH] [--port N] [--host H] [--no-open]
//
// The process running the operation (azops run, setup_waa, ...) writes the status file; this program
// only reads it. The page's Stop button asks that process to stop through `<status file>.cancel`.
// Stops on Ctrl-C (SIGINT) or SIGTERM.

#include "azops_cli/serve.hpp"

#include <CLI/CLI.hpp>

#include <azops/version.hpp>

#include <string>

int main(int argc, char** argv) {
    std::string status_file = "benchmark_results/azure_ops_status.json";
    int port = 8765;
    std::string host = "127.0.0.1";
    bool no_open = false;

    CLI::App app{"status_server " AZOPS_VERSION_STRING " — serve an azops status file to browsers."};
    app.set_version_flag("--version", AZOPS_VERSION_STRING);
    app.add_option("--status-file", status_file, "The status file to serve (written by another process)")
        ->capture_default_str();
    app.add_option("--port", port, "Port to listen on; 0 picks any free port, a taken one moves to the next free")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_option("--host", host,
                   "Address to listen on; anything but loopback lets other machines see the status")
        ->capture_default_str();
    app.add_flag("--no-open", no_open, "Do not open the dashboard in a browser");
    CLI11_PARSE(app, argc, argv);

    return azops_cli::run_serve(status_file, port, host, !no_open);
}
