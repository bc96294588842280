// azops — watch a long command from a status file (and, later, a browser page).
//
//   azops run [--task NAME] [--operation OP] [--status-file PATH] [--vm-size SIZE]
//             [--no-open] [--no-serve] -- COMMAND [ARGS...]
//
// Runs COMMAND with stdout and stderr merged, echoes its output, feeds every line to a Tracker that
// keeps the status file current, and exits with COMMAND's exit code (128+N when a signal killed it).
// SIGINT or SIGTERM stops COMMAND's whole process group and the task ends `cancelled`.

#include <azops/azops.hpp>

#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <iostream>
#include <string>
#include <vector>

#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif

namespace {

// The signal handler's only way to reach the child: the write end of its wake pipe.
const azops::ChildProcess* running_child = nullptr;

extern "C" void on_stop_signal(int) {
    if (running_child != nullptr) running_child->request_stop();
}

void install_stop_handlers() {
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    // Echoing into a closed pipe (`azops run ... | head`) must not kill the tracker mid-task.
    std::signal(SIGPIPE, SIG_IGN);
}

void echo(std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
        if (n <= 0) return;  // stdout closed or full of errors: the status file still gets everything
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

// Orphans of the command (a background job whose parent exited) are reparented to us rather than to
// init, so that none is left running or unreaped when azops exits.
void become_subreaper() {
#if defined(__linux__)
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
#endif
}

// Stops and reaps every child still ours after the command ended: processes that left its process
// group (setsid) and were reparented to us.
void stop_leftover_children() {
#if defined(__linux__)
    const std::string self = std::to_string(::getpid());
    std::vector<pid_t> killed;
    if (DIR* proc = ::opendir("/proc")) {
        while (const dirent* entry = ::readdir(proc)) {
            const std::string pid = entry->d_name;
            if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream stat("/proc/" + pid + "/stat");
            std::string line;
            if (!std::getline(stat, line)) continue;
            const auto close = line.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream fields(line.substr(close + 2));
            std::string state, ppid;
            fields >> state >> ppid;
            if (ppid != self) continue;
            killed.push_back(static_cast<pid_t>(std::stol(pid)));
            ::kill(killed.back(), SIGKILL);
        }
        ::closedir(proc);
    }
    for (const pid_t pid : killed) ::waitpid(pid, nullptr, 0);
#endif
    while (::waitpid(-1, nullptr, WNOHANG) > 0) {
    }
}

struct RunOptions {
    std::string task = "command";
    std::string operation = "command";
    std::string status_file = "benchmark_results/azure_ops_status.json";
    std::string vm_size;
    bool no_open = false;
    bool no_serve = false;
    std::vector<std::string> command;
};

int run(const RunOptions& opts) {
    azops::TrackerOptions tracker_options;
    tracker_options.status_file = opts.status_file;
    azops::Tracker tracker(tracker_options);
    if (!opts.vm_size.empty()) tracker.set_vm(azops::VmInfo{{}, opts.vm_size, {}, {}, {}, {}});
    std::optional<azops::ChildProcess> child;
    tracker.on_cancel([&child] {
        if (child) child->request_stop();
    });
    tracker.begin(opts.task);
    tracker.operation(opts.operation);
    try {
        child.emplace(azops::ChildProcess::spawn(opts.command));
    } catch (const azops::SpawnError& e) {
        std::cerr << "azops: " << e.what() << "\n";
        tracker.fail(e.what());
        return 127;
    }
    running_child = &*child;
    azops::LineSplitter splitter;
    const auto on_line = [&tracker](std::string_view line) { tracker.log(line); };
    const azops::ExitStatus status = child->run([&](std::string_view bytes) {
        echo(bytes);
        splitter.feed(bytes, on_line);
    });
    running_child = nullptr;
    stop_leftover_children();
    splitter.finish(on_line);
    if (status.stop_requested) {
        tracker.cancel("stopped on request; the command " + status.describe());
    } else if (status.code == 0) {
        tracker.succeed();
    } else {
        tracker.fail("the command " + status.describe());
    }
    return status.code;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"azops " AZOPS_VERSION_STRING " — watch a long cloud operation: status file, ETA, cost."};
    app.require_subcommand(1);
    app.set_version_flag("--version", AZOPS_VERSION_STRING);

    RunOptions run_options;
    CLI::App* run_cmd = app.add_subcommand("run", "Run COMMAND, track its output and keep the status file current.");
    run_cmd->add_option("--task", run_options.task, "Name of the task shown on the page (e.g. setup-waa)");
    run_cmd->add_option("--operation", run_options.operation,
                        "Operation name: vm_create, docker_install, docker_build, windows_boot, benchmark, or your own");
    run_cmd->add_option("--status-file", run_options.status_file, "Where to write the status JSON")
        ->capture_default_str();
    run_cmd->add_option("--vm-size", run_options.vm_size, "Azure VM size, for pricing (e.g. Standard_D8ds_v5)");
    run_cmd->add_flag("--no-open", run_options.no_open, "Do not open the dashboard in a browser");
    run_cmd->add_flag("--no-serve", run_options.no_serve, "Do not serve the dashboard");
    run_cmd->add_option("command", run_options.command, "The command to run, after --")->required();
    run_cmd->footer("Example: azops run --task build --operation docker_build -- docker build --progress=plain .");

    CLI11_PARSE(app, argc, argv);

    if (run_cmd->parsed()) {
        install_stop_handlers();
        become_subreaper();
        try {
            return run(run_options);
        } catch (const std::exception& e) {
            std::cerr << "azops: " << e.what() << "\n";
            return 125;
        }
    }
    return 0;
}
