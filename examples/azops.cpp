// azops — watch a long command in a browser.
//
//   azops run [--task NAME] [--operation OP] [--status-file PATH] [--vm-size SIZE]
//             [--port N] [--host H] [--no-open] [--no-serve] -- COMMAND [ARGS...]
//   azops serve [--status-file PATH] [--port N] [--host H] [--no-open]
//   azops parse docker|boot|waa [FILE|-]
//
// `run` runs COMMAND with stdout and stderr merged, echoes its output, feeds every line to a Tracker
// that keeps the status file current, serves the dashboard, and exits with COMMAND's exit code
// (128+N when a signal killed it). SIGINT, SIGTERM or the page's Stop button stops COMMAND's whole
// process group and the task ends `cancelled`. `serve` shows a status file another process writes.
// `parse` reads a captured log and prints what azops understands of it, one JSON line per event.

#include <azops/azops.hpp>

#include "azops_cli/parse_boot_waa.hpp"
#include "azops_cli/parse_docker.hpp"
#include "azops_cli/serve.hpp"

#include <CLI/CLI.hpp>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <memory>
#include <thread>
#include <utility>
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
// group (setsid) and were reparented to us. The browser we opened (`spared`) is left alone.
void stop_leftover_children(pid_t spared) {
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
            if (ppid != self || std::stol(pid) == spared) continue;
            killed.push_back(static_cast<pid_t>(std::stol(pid)));
            ::kill(killed.back(), SIGKILL);
        }
        ::closedir(proc);
    }
    for (const pid_t pid : killed) ::waitpid(pid, nullptr, 0);
#endif
    for (pid_t reaped; (reaped = ::waitpid(-1, nullptr, WNOHANG)) > 0 && reaped != spared;) {
    }
}

struct RunOptions {
    std::string task = "command";
    std::string operation = "command";
    std::string status_file = "benchmark_results/azure_ops_status.json";
    std::optional<std::string> history_file;  // default: azure_ops_history.json beside the status file
    double stall_minutes = 5;
    std::string vm_size;
    int port = 8765;
    std::string host = "127.0.0.1";
    bool no_open = false;
    bool no_serve = false;
    std::vector<std::string> command;
};

// Serves the dashboard for `tracker` and opens it; a dashboard that cannot start is a warning, not a
// reason to refuse running the command. Returns the server (or null) and the browser's pid (or 0).
std::pair<std::unique_ptr<azops::StatusServer>, pid_t> serve_dashboard(azops::Tracker& tracker, const RunOptions& opts) {
    if (opts.no_serve) return {nullptr, 0};
    azops::ServerOptions options;
    options.port = opts.port;
    options.host = opts.host;
    auto server = std::make_unique<azops::StatusServer>(std::make_shared<azops::TrackerFeed>(tracker), options);
    try {
        server->start();
    } catch (const std::exception& e) {
        std::cerr << "azops: no dashboard: " << e.what() << "\n";
        return {nullptr, 0};
    }
    std::cerr << "azops: dashboard at " << server->url() << "\n";
    const azops::BrowserResult browser = azops::open_browser(server->url(), !opts.no_open);
    std::cerr << "azops: " << browser.message << "\n";
    return {std::move(server), browser.pid};
}

// Open pages get the final state before the server goes away.
void let_viewers_see_the_end(const azops::StatusServer* server) {
    if (server != nullptr && server->live_streams() > 0) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    }
}

int run(const RunOptions& opts) {
    azops::TrackerOptions tracker_options;
    tracker_options.status_file = opts.status_file;
    const std::string history = opts.history_file.value_or(
        (std::filesystem::path(opts.status_file).parent_path() / "azure_ops_history.json").string());
    if (!history.empty()) tracker_options.history_file = history;
    tracker_options.eta.stall_min_seconds = opts.stall_minutes * 60;
    azops::Tracker tracker(tracker_options);
    if (!opts.vm_size.empty()) tracker.set_vm(azops::VmInfo{{}, opts.vm_size, {}, {}, {}, {}});
    std::optional<azops::ChildProcess> child;
    tracker.on_cancel([&child] {
        if (child) child->request_stop();
    });
    tracker.begin(opts.task);
    tracker.operation(opts.operation);
    const auto [server, browser_pid] = serve_dashboard(tracker, opts);
    try {
        child.emplace(azops::ChildProcess::spawn(opts.command));
    } catch (const azops::SpawnError& e) {
        std::cerr << "azops: " << e.what() << "\n";
        tracker.fail(e.what());
        let_viewers_see_the_end(server.get());
        return 127;
    }
    running_child = &*child;
    azops::LineSplitter splitter;
    const azops::ExitStatus status = child->run([&](std::string_view bytes) {
        echo(bytes);
        tracker.log_chunk(bytes, splitter);  // one lock and one clock reading per read, not per line
    });
    running_child = nullptr;
    stop_leftover_children(browser_pid);
    splitter.finish([&tracker](std::string_view line, std::size_t cut_bytes) { tracker.log(line, cut_bytes); });
    if (status.stop_requested) {
        tracker.cancel("stopped on request; the command " + status.describe());
    } else if (status.code == 0) {
        tracker.succeed();
    } else {
        tracker.fail("the command " + status.describe());
    }
    let_viewers_see_the_end(server.get());
    return status.code;
}

using ParseFunction = int (*)(std::istream&, std::ostream&, std::ostream&);

int run_parse(const std::string& file, ParseFunction parse) {
    if (file == "-") return parse(std::cin, std::cout, std::cerr);
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::cerr << "azops: cannot open " << file << ": " << std::strerror(errno) << "\n";
        return 2;
    }
    return parse(in, std::cout, std::cerr);
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
    run_cmd->add_option("--history", run_options.history_file,
                        "Past durations for the ETA, updated when the command succeeds (default: "
                        "azure_ops_history.json beside the status file; \"\" for none)");
    run_cmd->add_option("--stall-minutes", run_options.stall_minutes,
                        "Least silence (no output, no progress) that counts as stalled")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    run_cmd->add_option("--vm-size", run_options.vm_size, "Azure VM size, for pricing (e.g. Standard_D8ds_v5)");
    run_cmd->add_option("--port", run_options.port, "Dashboard port; the next free one if taken, 0 for any")
        ->capture_default_str();
    run_cmd->add_option("--host", run_options.host, "Address to serve on (anything but loopback is reachable by others)")
        ->capture_default_str();
    run_cmd->add_flag("--no-open", run_options.no_open, "Do not open the dashboard in a browser");
    run_cmd->add_flag("--no-serve", run_options.no_serve, "Do not serve the dashboard");
    run_cmd->add_option("command", run_options.command, "The command to run, after --")->required();
    run_cmd->footer("Example: azops run --task build --operation docker_build -- docker build --progress=plain .");

    std::string serve_status_file = "benchmark_results/azure_ops_status.json";
    std::string serve_host = "127.0.0.1";
    int serve_port = 8765;
    bool serve_no_open = false;
    CLI::App* serve_cmd = app.add_subcommand("serve", "Serve the dashboard for a status file that another process writes.");
    serve_cmd->add_option("--status-file", serve_status_file, "The status JSON to show")->capture_default_str();
    serve_cmd->add_option("--port", serve_port, "Port; the next free one if taken, 0 for any")->capture_default_str();
    serve_cmd->add_option("--host", serve_host, "Address to serve on")->capture_default_str();
    serve_cmd->add_flag("--no-open", serve_no_open, "Do not open the dashboard in a browser");

    CLI::App* parse_cmd = app.add_subcommand("parse", "Read a captured log and print what azops understands of it.");
    parse_cmd->require_subcommand(1);
    std::string parse_file = "-";
    const auto add_parser = [&](const char* name, const char* what) {
        CLI::App* sub = parse_cmd->add_subcommand(name, what);
        sub->add_option("file", parse_file, "The log file, or - for standard input")->capture_default_str();
        return sub;
    };
    CLI::App* parse_docker = add_parser("docker", "A docker build log (legacy builder or BuildKit)");
    CLI::App* parse_boot = add_parser("boot", "The Windows container's boot log (docker logs)");
    add_parser("waa", "A Windows-Agent-Arena benchmark log");

    CLI11_PARSE(app, argc, argv);

    if (serve_cmd->parsed()) return azops_cli::run_serve(serve_status_file, serve_port, serve_host, !serve_no_open);
    if (parse_cmd->parsed()) {
        const auto parse = parse_docker->parsed() ? azops_cli::run_parse_docker
                           : parse_boot->parsed() ? azops_cli::run_parse_boot
                                                  : azops_cli::run_parse_waa;
        return run_parse(parse_file, parse);
    }

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
