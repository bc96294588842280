// A writer for tests/test_faults.cpp to kill: a separate program, so that SIGKILL lands on a real
// process in the middle of real system calls, never on a thread of the test itself.
//
//   fault_writer status  STATUS_FILE        a busy Tracker: writes the status file as fast as it can,
//                                           prints "ready" once its first status is out; on SIGTERM
//                                           it cancels the task and exits 0
//   fault_writer history HISTORY_FILE N     History::record_to_file in a loop, run N, N+1, ...;
//                                           prints each N once its record_to_file has returned ok
//
// Both die with the test (PR_SET_PDEATHSIG), so a failed or killed test leaves nothing running.
#include <azops/history.hpp>
#include <azops/tracker.hpp>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <sys/prctl.h>
#include <unistd.h>

namespace {

std::atomic<bool> terminate_requested{false};

extern "C" void on_sigterm(int) { terminate_requested.store(true); }

// stdout is a pipe the test reads line by line; write(2) at once, nothing kept in a stdio buffer.
bool say(std::string_view line) {
    std::string text(line);
    text += '\n';
    return azops::detail::write_all(STDOUT_FILENO, text);
}

int run_status(const char* status_file) {
    struct sigaction action {};
    action.sa_handler = on_sigterm;
    sigemptyset(&action.sa_mask);
    ::sigaction(SIGTERM, &action, nullptr);

    azops::TrackerOptions options;
    options.status_file = status_file;
    options.min_write_interval = std::chrono::milliseconds(0);  // every change is written at once
    azops::Tracker tracker(options);
    tracker.begin("setup-waa");
    tracker.set_vm(azops::VmInfo{std::string("waa-vm"), std::string("Standard_D8ds_v5"), std::string("eastus"),
                                 std::string("20.81.112.4"), std::string("running"), {}});
    tracker.operation("docker_build", 21);
    tracker.flush();
    if (!say("ready")) return 2;
    // The shape of a BuildKit log: a step header now and then, pip output in between.
    for (long n = 0; !terminate_requested.load(); ++n) {
        const int step = static_cast<int>(n / 400 % 21) + 1;
        if (n % 400 == 0) {
            tracker.log("#" + std::to_string(step + 3) + " [" + std::to_string(step) +
                        "/21] RUN pip install --no-cache-dir -r requirements.txt");
        } else {
            tracker.log("#" + std::to_string(step + 3) + " " + std::to_string(n % 1000) +
                        ".07 Collecting package-" + std::to_string(n) + " (from -r requirements.txt (line 12))");
        }
    }
    tracker.cancel("stopped by SIGTERM");
    return 0;
}

int run_history(const char* history_file, const char* first) {
    char* end = nullptr;
    const long start = std::strtol(first, &end, 10);
    if (end == first || *end != '\0' || start < 0) {
        std::fprintf(stderr, "fault_writer: bad start index %s\n", first);
        return 2;
    }
    for (long n = start;; ++n) {
        // Run n took n + 0.25 s in its first step and 1.5 s (from the cache) in its second.
        const auto result = azops::History::record_to_file(history_file, "docker_build",
                                                           {static_cast<double>(n) + 0.25, 1.5}, {2});
        if (!result.ok) {
            std::fprintf(stderr, "fault_writer: record_to_file failed: %s\n", result.error.c_str());
            return 3;
        }
        if (!say(std::to_string(n))) return 2;
    }
}

}  // namespace

int main(int argc, char** argv) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() == 1) return 2;  // the test is already gone
    const std::string mode = argc > 1 ? argv[1] : "";
    if (mode == "status" && argc == 3) return run_status(argv[2]);
    if (mode == "history" && argc == 4) return run_history(argv[2], argv[3]);
    std::fprintf(stderr, "usage: fault_writer status STATUS_FILE | fault_writer history HISTORY_FILE FIRST_RUN\n");
    return 2;
}
