// azops_cli/serve.hpp — `azops serve` and the status_server example: serve a status file that
// another process writes, so that several people can watch one operation.
//
// Prints the URL (the browser is opened only when allowed and possible), then serves until SIGINT
// or SIGTERM and stops cleanly. Returns the process exit code: 0 after a signal, 1 when the server
// cannot start. Call it from the main thread before any other thread exists: the stop signals are
// blocked for every thread it starts and taken with sigwait().
#pragma once

#include <azops/browser.hpp>
#include <azops/server.hpp>

#include <csignal>
#include <cstring>
#include <exception>
#include <iostream>
#include <memory>
#include <string>

#include <pthread.h>

namespace azops_cli {

namespace detail {

// Blocks SIGINT and SIGTERM for as long as it lives. Created before any thread starts, so every
// server thread inherits the mask and the signals wait for sigwait() on this thread.
class StopSignals {
public:
    StopSignals() {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &set_, &previous_);
    }
    ~StopSignals() { pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }
    StopSignals(const StopSignals&) = delete;
    StopSignals& operator=(const StopSignals&) = delete;

    int wait() const {
        int signal = 0;
        while (sigwait(&set_, &signal) != 0) {
        }
        return signal;
    }

private:
    sigset_t set_;
    sigset_t previous_;
};

}  // namespace detail

inline int run_serve(const std::string& status_file, int port, const std::string& host, bool open) {
    const detail::StopSignals signals;
    try {
        auto feed = std::make_shared<azops::FileFeed>(status_file);
        azops::ServerOptions options;
        options.host = host;
        options.port = port;
        azops::StatusServer server(feed, options);
        server.start();
        std::cout << "azops: serving " << feed->status_file() << "\n"
                  << "azops: dashboard at " << server.url() << "\n";
        if (const auto snap = feed->snapshot(); snap.unavailable) {
            std::cout << "azops: waiting for the status file: " << *snap.unavailable << "\n";
        }
        const azops::BrowserResult browser = azops::open_browser(server.url(), open);
        std::cout << "azops: " << browser.message << "\n"
                  << "azops: press Ctrl-C to stop" << std::endl;
        const int signal = signals.wait();
        std::cout << "azops: " << ::strsignal(signal) << ", stopping" << std::endl;
        server.stop();
    } catch (const std::exception& e) {
        std::cerr << "azops: " << e.what() << "\n";
        return 1;
    }
    return 0;
}

}  // namespace azops_cli
