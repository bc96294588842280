// run_waa — run the Windows Agent Arena benchmark on a prepared VM, watched from a browser.
//
//   run_waa [--tasks N] [--model M] [--agent A] [--simulate [--speed N] [--seed N]] [--dry-run]
//           [--idle-deallocate MINUTES] [--status-file PATH] [--history PATH] [--port N] [--no-open] ...
//
// One operation, `benchmark`: WAA's client runs in the Windows container over ssh, and its log is
// fed line by line to the Tracker, whose WAA parser turns it into task K of N (phase
// `running_task_K`), and whose history (benchmark_per_task) gives the ETA. A Stop from the page
// waits for the current task to finish and be cleaned up, then ends the run `cancelled`: stopping
// in the middle of a task leaves Windows half-way through it. A second Ctrl-C stops at once.

#include "azops_cli/ops_session.hpp"
#include "azops_cli/waa_simulation.hpp"

#include <azops/azops.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace {

using azops_cli::CommandOptions;
using azops_cli::CommonOptions;
using azops_cli::RemoteTarget;
using azops_cli::Session;

struct BenchmarkOptions {
    int tasks = 13;
    std::string model = "gpt-4o";
    std::string agent = "navi";
};

// Where the benchmark stands, read from the same log the Tracker reads: whether a task is under
// way (a stop must wait for it), which one finished last, how many succeeded.
class BenchmarkWatch {
public:
    // Feeds one sanitised line; true when a task finished with it.
    bool feed(std::string_view line) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!parser_.feed(line)) return false;
        bool finished = false;
        for (const azops::WaaEvent& e : parser_.take_events()) {
            if (e.kind == azops::WaaEventKind::task_started) {
                in_task_ = true;
            } else if (e.kind == azops::WaaEventKind::task_finished) {
                in_task_ = false;
                finished = true;
                last_finished_ = e.domain + "/" + e.task_id;
            } else {
                in_task_ = false;
            }
        }
        return finished;
    }

    bool in_task() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return in_task_;
    }

    // "after task 4 of 13 (notepad/<id>); 9 tasks not run".
    std::string where_stopped() const {
        std::lock_guard<std::mutex> lock(mutex_);
        const int done = parser_.tasks_done();
        const int total = parser_.total_tasks();
        if (in_task_) {
            return "during task " + std::to_string(parser_.current_task_index()) + " of " + std::to_string(total) + " (" +
                   parser_.current_domain() + "/" + parser_.current_task_id() + " did not finish)";
        }
        if (done == 0) return "before the first task";
        std::string text = "after task " + std::to_string(done) + " of " + std::to_string(total) + " (" + last_finished_ + ")";
        if (total > done) text += "; " + std::to_string(total - done) + " tasks not run";
        return text;
    }

    std::string current_task() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return "task " + std::to_string(parser_.current_task_index()) + " of " + std::to_string(parser_.total_tasks());
    }

private:
    mutable std::mutex mutex_;
    azops::WaaLogParser parser_;
    bool in_task_ = false;
    std::string last_finished_;
};

RemoteTarget remote_target(const CommonOptions& o) { return RemoteTarget{o.ssh, o.scp, o.ssh_user, o.ip}; }

int print_dry_run(const CommonOptions& o, const BenchmarkOptions& b) {
    using azops::format_command;
    const RemoteTarget remote = remote_target(o);
    const auto az = [&](std::vector<std::string> words) {
        words.insert(words.begin(), o.az);
        for (const auto& w : {std::string("-g"), o.resource_group, std::string("-n"), o.vm_name, std::string("-o"),
                              std::string("json")}) {
            words.push_back(w);
        }
        return format_command(words);
    };
    std::cout << "# run-waa --dry-run: the commands a real run executes, in order (nothing is run)\n\n"
              << "# the VM's state and address, at the start and every " << o.poll_interval_seconds << " s:\n"
              << az({"vm", "get-instance-view"}) << "\n"
              << az({"vm", "show", "-d"}) << "\n\n"
              << "# benchmark: " << b.tasks << " tasks\n"
              << format_command(azops_cli::ssh_command(remote, azops_cli::remote::run_benchmark(b.tasks, b.model, b.agent)))
              << "\n# on a stop request, once the current task is finished and cleaned up:\n"
              << format_command(azops_cli::ssh_command(remote, azops_cli::remote::stop_benchmark())) << "\n";
    if (o.idle_deallocate_minutes) {
        std::cout << "\n# --idle-deallocate " << *o.idle_deallocate_minutes
                  << ": once the task has ended or stalled with the VM still allocated, after that many minutes:\n"
                  << format_command({o.az, "vm", "deallocate", "-g", o.resource_group, "-n", o.vm_name, "--no-wait"})
                  << "\n";
    }
    return azops_cli::exit_succeeded;
}

// The task's end: a stop says where it happened; a failure says why.
void end_task(Session& session, const BenchmarkWatch& watch, const std::optional<std::string>& error) {
    azops_cli::StopControl& stop = session.stop();
    azops::Tracker& tracker = session.tracker();
    if (stop.requested()) {
        const auto notice = tracker.snapshot().notice;
        if (notice && notice->rfind("stop requested", 0) == 0) tracker.notice(std::nullopt);  // answered now
        if (stop.cause() == azops_cli::StopCause::idle_deallocated) tracker.fail(stop.reason());
        else tracker.cancel(stop.reason() + ", " + watch.where_stopped());
    } else if (error) {
        tracker.fail(*error);
    } else {
        tracker.succeed();
    }
}

// The notice while a stop waits for the current task.
void tell_stop_waits(Session& session, const BenchmarkWatch& watch) {
    session.tracker().notice("stop requested: " + watch.current_task() +
                             " finishes and is cleaned up first (Ctrl-C twice stops at once)");
}

void run_real(Session& session, const BenchmarkOptions& b, BenchmarkWatch& watch) {
    const CommonOptions& o = session.options();
    azops::Tracker& tracker = session.tracker();
    const azops::AzCli cli(azops::AzCliOptions{o.az, std::chrono::milliseconds(60000),
                                               std::chrono::milliseconds(20 * 60 * 1000), {}});
    const azops::AzureVm vm{o.resource_group, o.vm_name};
    RemoteTarget remote = remote_target(o);
    session.follow_vm(cli, vm);
    if (remote.ip.empty()) {
        const azops::AzureVmStatus status = cli.vm_status(vm);
        if (status.error) return end_task(session, watch, "cannot find the VM's address: " + *status.error + " (or give it with --ip)");
        tracker.set_vm(azops::VmInfo{status.name, status.size, status.region, status.ip, status.state, std::nullopt});
        if (!status.ip) return end_task(session, watch, "VM " + vm.name + " has no public IP address (is it deallocated?)");
        remote.ip = *status.ip;
    } else {
        tracker.set_vm(azops::VmInfo{vm.name, o.vm_size, o.region, remote.ip, std::nullopt, std::nullopt});
    }

    tracker.operation("benchmark");
    std::atomic<bool> told{false};
    CommandOptions follow;
    follow.stop_on_request = [&](bool urgent) {
        if (urgent || !watch.in_task()) return true;
        if (!told.exchange(true)) tell_stop_waits(session, watch);
        return false;
    };
    follow.on_line = [&](std::string_view clean) {
        return watch.feed(clean) && session.stop().requested();
    };
    const azops_cli::CommandResult r = session.run_command(
        azops_cli::ssh_command(remote, azops_cli::remote::run_benchmark(b.tasks, b.model, b.agent)), follow);
    if (session.stop().requested()) {
        // The benchmark runs in the container whatever happens to this ssh session: end it there.
        CommandOptions unstoppable;
        unstoppable.stop_on_request = [](bool) { return false; };
        session.run_command(azops_cli::ssh_command(remote, azops_cli::remote::stop_benchmark()), unstoppable);
        return end_task(session, watch, std::nullopt);
    }
    if (r.spawn_error) return end_task(session, watch, "cannot run the benchmark: " + *r.spawn_error);
    if (!r.succeeded()) {
        const std::string said = !r.last_error_line.empty() ? r.last_error_line : r.last_line;
        return end_task(session, watch, "the benchmark " + r.exit->describe() + (said.empty() ? "" : ": " + said));
    }
    end_task(session, watch, std::nullopt);
}

void run_simulated(Session& session, const azops_cli::sim::Script& script, const std::string& ip, BenchmarkWatch& watch) {
    const CommonOptions& o = session.options();
    session.tracker().set_vm(azops::VmInfo{o.vm_name, o.vm_size, o.region, ip, std::string("running"),
                                           std::string("http://localhost:8006")});
    const azops_cli::sim::ScaledClock& clock = *session.scaled_clock();
    azops_cli::sim::Player player(clock, session.tracker(), session.stop(), [&](std::string_view line) {
        if (o.show_output) session.terminal().echo_output(line);
        watch.feed(azops::sanitize_line(line));
    });
    const auto result = player.play(script, clock.seconds(), azops_cli::sim::StopPolicy::between_tasks,
                                    [&] { tell_stop_waits(session, watch); });
    end_task(session, watch, result.failure);
}

bool plain_word(const std::string& s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '_' || c == '.';
    });
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "run_waa " AZOPS_VERSION_STRING
        " - run the Windows Agent Arena (WAA) benchmark on a prepared VM, with a live dashboard.\n\n"
        "WAA's client runs inside the Windows container on the VM (set up by setup_waa) and works through N tasks. "
        "A browser page shows task K of N, the task's domain and agent step, successes and failures so far, the ETA "
        "(from past runs' time per task, recorded in --history, and this run's pace), the cost so far and projected, "
        "the VM's state and the live log; the same status goes to --status-file. Stop on the page finishes the current "
        "task and its clean-up first, then ends the run; a second Ctrl-C stops at once.\n\n"
        "Try it without Azure: --simulate replays a realistic run of N tasks in about a minute.\n\n"
        "Exit codes: 0 succeeded, 1 failed, 130 cancelled (Stop or Ctrl-C), 2 usage error."};
    app.footer(
        "Examples:\n"
        "  run_waa --simulate                      replay a 13-task benchmark in about a minute\n"
        "  run_waa --simulate --tasks 5 --speed 200\n"
        "  run_waa --tasks 30 --idle-deallocate 30   run for real; deallocate the VM 30 idle minutes after it ends");
    app.set_version_flag("--version", AZOPS_VERSION_STRING);
    CommonOptions common;
    BenchmarkOptions bench;
    azops_cli::add_common_options(app, common);
    app.add_option("--tasks", bench.tasks, "Number of benchmark tasks")->capture_default_str()->check(CLI::Range(1, 100000));
    app.add_option("--model", bench.model, "Model the agent uses")->capture_default_str();
    app.add_option("--agent", bench.agent, "WAA agent")->capture_default_str();
    if (const auto code = azops_cli::parse_command_line(app, argc, argv)) return *code;
    if (!plain_word(bench.model) || !plain_word(bench.agent)) {
        std::cerr << "run_waa: --model and --agent take a plain name (letters, digits, '-', '_', '.')\n";
        return azops_cli::exit_usage;
    }
    if (common.dry_run) return print_dry_run(common, bench);

    try {
        std::optional<azops_cli::sim::BenchmarkSimulation> simulation;
        std::optional<double> speed;
        std::string ip;
        if (common.simulate) {
            simulation.emplace();
            simulation->tasks = bench.tasks;
            simulation->model = bench.model;
            simulation->agent = bench.agent;
            simulation->seed = common.seed;
            azops_cli::sim::Rng rng(common.seed ^ 0x5157AA5EULL);
            ip = common.ip.empty() ? azops_cli::sim::detail::simulated_ip(rng) : common.ip;
            simulation->remote = remote_target(common);
            simulation->remote.ip = ip;
            // The length does not depend on when the run starts: measure it for the speed.
            const auto probe = azops_cli::sim::run_waa_script(*simulation, std::chrono::system_clock::now());
            speed = azops_cli::simulation_speed(common, probe.duration());
        }
        Session session(common, azops_cli::SessionSpec{"run_waa", {"benchmark"}, speed});
        BenchmarkWatch watch;
        azops::Tracker& tracker = session.tracker();
        tracker.on_cancel([&session] {
            session.stop().request(azops_cli::StopCause::user, "stopped from the dashboard");
        });
        if (common.idle_deallocate_minutes) session.enable_idle_deallocation(azops_cli::idle_options(session, common));
        session.serve_dashboard();
        session.start_terminal();
        tracker.begin("run-waa");
        if (simulation) {
            const azops_cli::sim::ScaledClock& clock = *session.scaled_clock();
            const auto script = azops_cli::sim::run_waa_script(*simulation, clock.wall_at(clock.seconds()));
            session.say("simulating a " + azops_cli::detail::short_duration(script.duration()) + " benchmark of " +
                        std::to_string(bench.tasks) + " tasks at " + std::to_string(static_cast<int>(*speed + 0.5)) +
                        "x (nothing runs on Azure)");
            run_simulated(session, script, ip, watch);
        } else {
            run_real(session, bench, watch);
        }
        return session.finish();
    } catch (const std::exception& e) {
        std::cerr << "run_waa: " << e.what() << "\n";
        return azops_cli::exit_failed;
    }
}
