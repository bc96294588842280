// azops_cli/ops_session.hpp — what setup_waa and run_waa share: their common options, and a
// Session that wires a Tracker to everything around it (the dashboard, the terminal line, stop
// requests from the page and from signals, the VM's state from az, idle deallocation, the child
// commands whose output it tracks) and turns the task's end into an exit code.
//
// Thread-safety: a Session is driven by the main thread; its parts run threads of their own (the
// tracker's writer, the server, the terminal printer, the signal watcher, the VM poller, the idle
// monitor) and stop them, in order, when it is destroyed.
// Errors: the constructor throws what Tracker's does (a status folder that cannot be created);
// after that failures become the task's error, a notice, or a line on the terminal.
#pragma once

#include <azops/azops.hpp>
#include <azops/server.hpp>

#include "idle_deallocator.hpp"
#include "simulation.hpp"
#include "stop_control.hpp"
#include "terminal_progress.hpp"
#include "waa_commands.hpp"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace azops_cli {

inline constexpr int exit_succeeded = 0;
inline constexpr int exit_failed = 1;
inline constexpr int exit_usage = 2;
inline constexpr int exit_cancelled = 130;

struct CommonOptions {
    std::string status_file = "benchmark_results/azure_ops_status.json";
    std::string history_file = "benchmark_results/azure_ops_history.json";
    double stall_minutes = 5;
    int port = 8765;
    std::string host = "127.0.0.1";
    bool no_open = false;
    bool no_serve = false;
    std::optional<double> linger_seconds;
    std::string resource_group = "openadapt-agents";
    std::string vm_name = "waa-eval-vm";
    std::string vm_size = "Standard_D8ds_v5";
    std::string region = "eastus";
    std::string az = "az";
    bool az_given = false;
    std::string ssh = "ssh";
    std::string scp = "scp";
    std::string ssh_user = "azureuser";
    std::string ip;
    double poll_interval_seconds = 30;
    std::optional<double> idle_deallocate_minutes;
    bool dry_run = false;
    bool simulate = false;
    double speed = 0;  // 0: chosen so that the simulation takes about a minute
    std::uint64_t seed = 1;
    bool show_output = false;
};

// Adds the options both programs take. `--simulate` and friends come first in --help: they are
// what a newcomer tries.
inline void add_common_options(CLI::App& app, CommonOptions& o) {
    app.add_flag("--simulate", o.simulate,
                 "Run nothing: replay a realistic run (real output formats and timings, sped up) through the same "
                 "tracker, dashboard and files. Needs no Azure account.");
    app.add_option("--speed", o.speed,
                   "With --simulate: how many times faster than real time (default: whatever makes it last about a "
                   "minute)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--seed", o.seed, "With --simulate: which of the possible runs to replay (same seed, same run)")
        ->capture_default_str();
    app.add_flag("--dry-run", o.dry_run, "Print the commands a real run would execute, run nothing, exit 0");
    app.add_option("--status-file", o.status_file, "Where the status JSON is written")->capture_default_str();
    app.add_option("--history", o.history_file,
                   "Durations of past runs, read for the ETA and updated by each finished operation ('' for none)")
        ->capture_default_str();
    app.add_option("--port", o.port, "Dashboard port; the next free one if taken, 0 for any free port")
        ->capture_default_str()
        ->check(CLI::Range(0, 65535));
    app.add_option("--host", o.host, "Address the dashboard listens on (anything but loopback is reachable by others)")
        ->capture_default_str();
    app.add_flag("--no-open", o.no_open, "Serve the dashboard but do not open a browser");
    app.add_flag("--no-serve", o.no_serve, "No dashboard (the status file is still written)");
    app.add_option("--linger", o.linger_seconds,
                   "Seconds the dashboard stays up after the task ends, so the page shows the end (default 5; 0 with "
                   "--no-serve)")
        ->check(CLI::NonNegativeNumber);
    app.add_option("--resource-group", o.resource_group, "Azure resource group of the VM")->capture_default_str();
    app.add_option("--vm-name", o.vm_name, "Name of the VM")->capture_default_str();
    app.add_option("--vm-size", o.vm_size, "VM size (needs nested virtualization; sets the hourly rate)")
        ->capture_default_str();
    app.add_option("--region", o.region, "Azure region (sets the hourly rate)")->capture_default_str();
    app.add_option("--az", o.az, "The Azure CLI to run (a name on PATH or a path)")
        ->capture_default_str()
        ->each([&o](const std::string&) { o.az_given = true; });
    app.add_option("--ssh", o.ssh, "The ssh client to run")->capture_default_str();
    app.add_option("--scp", o.scp, "The scp client to run")->capture_default_str();
    app.add_option("--ssh-user", o.ssh_user, "User on the VM")->capture_default_str();
    app.add_option("--ip", o.ip, "The VM's public IP (otherwise asked from az)");
    app.add_option("--poll-interval", o.poll_interval_seconds, "Seconds between two looks at the VM's state (az)")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--idle-deallocate", o.idle_deallocate_minutes,
                   "Deallocate the VM (az vm deallocate, which stops compute billing) when it has been idle this many "
                   "minutes after the task ended or stalled; warnings at 15 and 5 minutes left. Off unless given")
        ->check(CLI::PositiveNumber);
    app.add_option("--stall-minutes", o.stall_minutes,
                   "Least silence (no output, no progress) that counts as stalled; longer when history says the "
                   "current step takes longer")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_flag("--show-output", o.show_output, "Also print the commands' output (sanitised) on standard output");
}

// Runs `parse` on argv the CLI11 way, with the exit codes of these programs: --help and --version
// exit 0, a usage error 2.
inline std::optional<int> parse_command_line(CLI::App& app, int argc, char** argv) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return exit_usage;
    }
    return std::nullopt;
}

// The simulation's speed when none was asked for: about a minute for the whole script.
inline double simulation_speed(const CommonOptions& o, double script_seconds) {
    if (o.speed > 0) return o.speed;
    return std::max(1.0, script_seconds / 60.0);
}

struct SessionSpec {
    std::string program;                  // "setup_waa", for terminal messages
    std::vector<std::string> operations;  // planned, in order
    std::optional<double> simulation_speed;
};

// How a child command ended.
struct CommandResult {
    std::optional<azops::ExitStatus> exit;   // absent when it could not start
    std::optional<std::string> spawn_error;
    bool ended_by_output = false;            // `on_line` asked to end it (it had said what was awaited)
    std::string last_line;                   // its last non-empty output line, for error messages
    std::string last_error_line;             // its last line that starts with ERROR, if any

    bool succeeded() const { return exit && exit->code == 0; }
};

struct CommandOptions {
    // Each sanitised output line; true ends the command (e.g. a log follower that showed what was
    // awaited).
    std::function<bool(std::string_view clean_line)> on_line;
    // Whether a stop request (urgent or not) ends the command at once; default: always.
    std::function<bool(bool urgent)> stop_on_request;
    bool log_command_line = true;  // log `$ command` before its output
};

class Session {
public:
    Session(const CommonOptions& options, SessionSpec spec)
        : options_(options), spec_(std::move(spec)), signals_(stop_) {
        if (spec_.simulation_speed) clock_.emplace(*spec_.simulation_speed);
        azops::TrackerOptions t;
        t.status_file = options_.status_file;
        if (!options_.history_file.empty()) t.history_file = options_.history_file;
        t.planned_operations = spec_.operations;
        t.eta.stall_min_seconds = options_.stall_minutes * 60;
        if (clock_) t.clock = clock_->function();
        tracker_ = std::make_unique<azops::Tracker>(std::move(t));
        terminal_ = std::make_unique<TerminalProgress>([this] { return tracker_->snapshot(); },
                                                      TerminalProgressOptions{STDERR_FILENO, std::nullopt,
                                                                              std::chrono::milliseconds(250),
                                                                              std::chrono::seconds(10), ""});
    }

    // Stops in order: nothing may call into the tracker once it is gone.
    ~Session() {
        idle_.reset();
        poller_.reset();
        if (server_) server_->stop();
        terminal_->stop();
    }

    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    azops::Tracker& tracker() { return *tracker_; }
    StopControl& stop() { return stop_; }
    TerminalProgress& terminal() { return *terminal_; }
    const CommonOptions& options() const { return options_; }
    const sim::ScaledClock* scaled_clock() const { return clock_ ? &*clock_ : nullptr; }
    azops::WallClock clock() const {
        if (clock_) return clock_->function();
        return [] { return std::chrono::system_clock::now(); };
    }

    void say(const std::string& text) { terminal_->message(spec_.program + ": " + text); }

    // Serves the dashboard and opens it unless told not to; a dashboard that cannot start is a
    // warning, not a reason to skip the task.
    void serve_dashboard() {
        if (options_.no_serve) return;
        azops::ServerOptions so;
        so.host = options_.host;
        so.port = options_.port;
        so.clock = clock();
        auto server = std::make_unique<azops::StatusServer>(std::make_shared<azops::TrackerFeed>(*tracker_), so);
        try {
            server->start();
        } catch (const std::exception& e) {
            say(std::string("no dashboard: ") + e.what());
            return;
        }
        server_ = std::move(server);
        say("dashboard at " + server_->url());
        say(azops::open_browser(server_->url(), !options_.no_open).message);
    }

    void start_terminal() {
        say("status file " + std::string(tracker_->snapshot().status_file));
        terminal_->start();
    }

    // Follows the VM's state with az (real runs): every answer moves the billing; a VM that does
    // not exist (yet) or an az that fails leaves the state as it was.
    void follow_vm(const azops::AzCli& cli, const azops::AzureVm& vm) {
        if (poller_) return;
        const auto interval = std::chrono::milliseconds(static_cast<long long>(options_.poll_interval_seconds * 1000));
        poller_ = std::make_unique<azops::VmStatePoller>(
            cli, vm,
            [this](const azops::AzureVmStatus& s) {
                ++vm_polls_;
                if (s.error) {
                    // Not there (yet, or any more): nothing is billed for it.
                    if (s.error->find("(ResourceNotFound)") != std::string::npos) {
                        tracker_->set_vm(azops::VmInfo{{}, {}, {}, {}, std::string("absent"), {}});
                    } else {
                        tracker_->notice("could not read the VM's state: " + *s.error);
                    }
                    return;
                }
                tracker_->set_vm(azops::VmInfo{s.name, s.size, s.region, s.ip, s.state, std::nullopt});
            },
            interval);
    }

    void poll_vm_now() {
        if (poller_) poller_->poll_now();
    }

    // How many answers about the VM's state have come.
    std::uint64_t vm_polls() const { return vm_polls_.load(); }

    void enable_idle_deallocation(IdleDeallocateOptions idle) {
        idle_ = std::make_unique<IdleDeallocator>(*tracker_, clock(), stop_, *terminal_, std::move(idle));
    }

    // Logs a command line the way a real run does before running it.
    void log_command(const std::vector<std::string>& argv) {
        const std::string line = "$ " + azops::format_command(argv);
        tracker_->log(line);
        if (options_.show_output) terminal_->echo_output(line);
    }

    // One raw line of output: into the tracker, and onto stdout with --show-output.
    void output_line(std::string_view line, std::size_t cut_bytes = 0) {
        tracker_->log(line, cut_bytes);
        if (options_.show_output) terminal_->echo_output(line);
    }

    // Runs a command, its output lines into the tracker, until it exits, a stop request ends it,
    // or `on_line` says what was awaited has come.
    CommandResult run_command(const std::vector<std::string>& argv, const CommandOptions& co = {}) {
        if (co.log_command_line) log_command(argv);
        CommandResult result;
        std::optional<azops::ChildProcess> child;
        try {
            child.emplace(azops::ChildProcess::spawn(argv));
        } catch (const azops::SpawnError& e) {
            result.spawn_error = e.what();
            return result;
        }
        const azops::ChildProcess& running = *child;
        const ScopedStopHook hook(stop_, [&running, &co](bool urgent) {
            if (!co.stop_on_request || co.stop_on_request(urgent)) running.request_stop();
        });
        azops::LineSplitter splitter;
        const auto on_line = [&](std::string_view line, std::size_t cut) {
            output_line(line, cut);
            const std::string clean = azops::sanitize_line(line, cut);
            if (!clean.empty()) result.last_line = clean;
            if (clean.rfind("ERROR", 0) == 0 || clean.find(" ERROR: ") != std::string::npos) result.last_error_line = clean;
            if (co.on_line && !result.ended_by_output && co.on_line(clean)) {
                result.ended_by_output = true;
                running.request_stop();
            }
        };
        const auto on_redraw = [this](std::string_view line, std::size_t cut) { tracker_->log_redraw(line, cut); };
        azops::StopPolicy policy;
        policy.grace = std::chrono::milliseconds(5000);
        result.exit = child->run([&](std::string_view bytes) { splitter.feed(bytes, on_line, on_redraw); }, policy);
        splitter.finish(on_line);
        return result;
    }

    // After the task ended (the tracker's state says how): idle deallocation, a reminder about a
    // VM still billed, a last look for open pages; returns the exit code.
    int finish() {
        const azops::OpsStatus end = tracker_->snapshot();
        int code = end.state == "succeeded" ? exit_succeeded : end.state == "cancelled" ? exit_cancelled : exit_failed;
        if (end.error) say(end.state + ": " + *end.error);
        if (idle_) {
            if (!idle_->settle()) say("idle deallocation abandoned; the VM is still allocated and billed");
            if (idle_->failed() && code == exit_succeeded) code = exit_failed;
        } else if (billed(end.vm_state)) {
            say("VM " + options_.vm_name + " is still allocated and billed" +
                (end.hourly_rate_usd ? " (" + detail::dollars(*end.hourly_rate_usd) + "/h)" : std::string()) +
                "; when done with it: " + azops::format_command(deallocate_command()) +
                " (or use --idle-deallocate MINUTES)");
        }
        const double linger = options_.linger_seconds.value_or(options_.no_serve ? 0.0 : 5.0);
        if (server_ && linger > 0) {
            stop_.wait_for(std::chrono::duration<double>(linger), stop_.generation());
        }
        terminal_->stop();
        return code;
    }

    std::vector<std::string> deallocate_command() const {
        return {options_.az, "vm", "deallocate", "-g", options_.resource_group, "-n", options_.vm_name, "--no-wait"};
    }

    static bool billed(const std::optional<std::string>& state) {
        return state && (*state == "running" || *state == "starting" || *state == "stopping" || *state == "stopped");
    }

private:
    const CommonOptions options_;
    const SessionSpec spec_;
    StopControl stop_;
    SignalWatcher signals_;  // before any other thread starts
    std::optional<sim::ScaledClock> clock_;
    std::unique_ptr<azops::Tracker> tracker_;
    std::unique_ptr<TerminalProgress> terminal_;
    std::unique_ptr<azops::StatusServer> server_;
    std::atomic<std::uint64_t> vm_polls_{0};
    std::unique_ptr<azops::VmStatePoller> poller_;
    std::unique_ptr<IdleDeallocator> idle_;
};

// The idle deallocation a session should run: the real az unless the VM is simulated (then az runs
// only when --az was given, to try the command path against a stand-in).
inline IdleDeallocateOptions idle_options(Session& session, const CommonOptions& o) {
    IdleDeallocateOptions idle;
    idle.minutes = *o.idle_deallocate_minutes;
    idle.vm_name = o.vm_name;
    idle.manual_command = azops::format_command(session.deallocate_command());
    idle.simulated_vm = o.simulate;
    if (!o.simulate || o.az_given) {
        const azops::AzCli cli(azops::AzCliOptions{o.az, std::chrono::milliseconds(60000),
                                                   std::chrono::milliseconds(20 * 60 * 1000), {}});
        const azops::AzureVm vm{o.resource_group, o.vm_name};
        idle.deallocate = [&session, cli, vm] {
            session.log_command(session.deallocate_command());
            azops::AzCommandResult r = cli.deallocate(vm);
            if (r.error) session.output_line("ERROR: " + *r.error);
            return r;
        };
        if (!o.simulate) {
            idle.poll_now = [&session] { session.poll_vm_now(); };
            idle.poll_count = [&session] { return session.vm_polls(); };
        }
    }
    return idle;
}

}  // namespace azops_cli
