// setup_waa — create an Azure VM and make Windows Agent Arena ready on it, watched from a browser.
//
//   setup_waa [--simulate [--speed N] [--seed N]] [--dry-run] [--only OPS] [--build-context DIR]
//             [--idle-deallocate MINUTES] [--status-file PATH] [--history PATH] [--port N] [--no-open]
//             [--no-serve] [--vm-size SIZE] [--region R] [--resource-group RG] [--vm-name NAME] [--az PATH]
//
// Four operations, each a timeline entry with its own parser and history: vm_create (az), then over
// ssh docker_install, docker_build (BuildKit plain output, followed from a log file on the VM) and
// windows_boot (the container's boot log, then the WAA server's /probe). This file shows how a tool
// wires azops in: a Tracker fed the raw output of each command, a StatusServer for the page, and
// the Tracker's stop requests turned into stopping the child. `--simulate` replays the same output
// through the same Tracker, so the page can be tried without an Azure account.

#include "azops_cli/ops_session.hpp"
#include "azops_cli/waa_simulation.hpp"

#include <azops/azops.hpp>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

namespace {

using azops_cli::CommandOptions;
using azops_cli::CommandResult;
using azops_cli::CommonOptions;
using azops_cli::RemoteTarget;
using azops_cli::Session;

const std::vector<std::string> setup_operations = {"vm_create", "docker_install", "docker_build", "windows_boot"};

struct SetupOptions {
    std::vector<std::string> only;
    std::string build_context = "waa_deploy";
    double probe_timeout_minutes = 25;
    double probe_interval_seconds = 15;
    std::string fault = "none";
    int os_disk_gb = azops::VmCreateSpec{}.os_disk_gb;
};

azops::VmCreateSpec create_spec(const CommonOptions& o, const SetupOptions& setup) {
    azops::VmCreateSpec spec;
    spec.os_disk_gb = setup.os_disk_gb;
    spec.vm = azops::AzureVm{o.resource_group, o.vm_name};
    spec.size = o.vm_size;
    spec.location = o.region;
    spec.admin_user = o.ssh_user;
    return spec;
}

RemoteTarget remote_target(const CommonOptions& o) { return RemoteTarget{o.ssh, o.scp, o.ssh_user, o.ip}; }

bool selected(const std::vector<std::string>& ops, const std::string& op) {
    return std::find(ops.begin(), ops.end(), op) != ops.end();
}

std::vector<std::string> az_argv(const CommonOptions& o, std::vector<std::string> args) {
    args.insert(args.begin(), o.az);
    return args;
}

// ---- --dry-run ----

int print_dry_run(const CommonOptions& o, const SetupOptions& s, const std::vector<std::string>& ops) {
    using azops::format_command;
    const RemoteTarget remote = remote_target(o);
    const std::vector<std::string> vm_args{"-g", o.resource_group, "-n", o.vm_name};
    const auto az = [&](std::vector<std::string> words) {
        words.insert(words.end(), vm_args.begin(), vm_args.end());
        return format_command(az_argv(o, std::move(words)));
    };
    std::cout << "# setup-waa --dry-run: the commands a real run executes, in order (nothing is run)\n";
    if (selected(ops, "vm_create")) {
        std::cout << "\n# vm_create: does the VM exist?\n"
                  << az({"vm", "get-instance-view"}) << " -o json\n"
                  << "# if it does not:\n"
                  << format_command(azops::create_command(create_spec(o, s), o.az)) << "\n"
                  << "# if it exists but is deallocated:\n"
                  << az({"vm", "start"}) << "\n";
    } else if (o.ip.empty()) {
        std::cout << "\n# the VM's address:\n" << az({"vm", "show", "-d"}) << " -o json\n";
    }
    std::cout << "# the VM's state and address, every " << o.poll_interval_seconds << " s while the task runs:\n"
              << az({"vm", "get-instance-view"}) << " -o json\n"
              << az({"vm", "show", "-d"}) << " -o json\n";
    namespace remote_cmd = azops_cli::remote;
    if (selected(ops, "docker_install")) {
        std::cout << "\n# docker_install\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::install_docker())) << "\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::configure_docker())) << "\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::check_nested_virtualization())) << "\n";
    }
    if (selected(ops, "docker_build")) {
        std::cout << "\n# docker_build\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::clear_build_folder())) << "\n"
                  << format_command(azops_cli::scp_command(remote, s.build_context, "waa-build")) << "\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::docker_build())) << "\n"
                  << "# on a stop request:\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::stop_docker_build())) << "\n";
    }
    if (selected(ops, "windows_boot")) {
        std::cout << "\n# windows_boot\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::start_windows_container())) << "\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::follow_windows_log()))
                  << "    (until \"Windows started successfully\")\n"
                  << format_command(azops_cli::ssh_command(remote, remote_cmd::probe_waa_server()))
                  << "    (every " << s.probe_interval_seconds << " s, for up to " << s.probe_timeout_minutes << " min)\n";
    }
    if (o.idle_deallocate_minutes) {
        std::cout << "\n# --idle-deallocate " << *o.idle_deallocate_minutes
                  << ": once the task has ended or stalled with the VM still allocated, after that many minutes:\n"
                  << format_command(az_argv(o, {"vm", "deallocate", "-g", o.resource_group, "-n", o.vm_name,
                                                "--no-wait"}))
                  << "\n";
    }
    return azops_cli::exit_succeeded;
}

// ---- the real run ----

// az's own lines (warnings, errors, its JSON) into the log, as a terminal would have shown them.
void log_az_output(Session& session, const azops::AzCommandResult& r, bool with_stdout) {
    const auto lines = [&session](const std::string& text) {
        azops::LineSplitter splitter;
        const auto emit = [&session](std::string_view line, std::size_t cut) { session.output_line(line, cut); };
        splitter.feed(text, emit);
        splitter.finish(emit);
    };
    lines(r.stderr_text);
    if (with_stdout) lines(r.stdout_text);
}

std::string failure_text(const CommandResult& r, const std::string& what) {
    if (r.spawn_error) return what + ": " + *r.spawn_error;
    const std::string said = !r.last_error_line.empty() ? r.last_error_line : r.last_line;
    if (r.exit && r.exit->code == 255) return what + ": the VM cannot be reached over ssh (" + said + ")";
    return what + " (" + (r.exit ? r.exit->describe() : std::string("did not run")) + ")" +
           (said.empty() ? std::string() : ": " + said);
}

// The VM exists (or is created, or started), its IP is known and its state followed.
std::optional<std::string> real_vm_create(Session& session, const azops::AzCli& cli, const azops::VmCreateSpec& spec,
                                          RemoteTarget& remote) {
    azops::Tracker& tracker = session.tracker();
    const CommonOptions& o = session.options();
    tracker.operation("vm_create");
    tracker.set_vm(azops::VmInfo{spec.vm.name, spec.size, spec.location, std::nullopt, std::nullopt, std::nullopt});
    azops::AzCancelToken cancel;
    const azops_cli::ScopedStopHook hook(session.stop(), [&cancel](bool) { cancel.cancel(); });

    const std::vector<std::string> view_args{"vm", "get-instance-view", "-g", spec.vm.resource_group, "-n", spec.vm.name,
                                             "-o", "json"};
    session.log_command(az_argv(o, view_args));
    const azops::AzCommandResult view = cli.run(view_args, std::nullopt, &cancel);
    log_az_output(session, view, false);
    if (view.failure == azops::AzFailure::cancelled) return std::nullopt;
    const bool missing = view.failure == azops::AzFailure::not_found &&
                         view.stderr_text.find("ResourceGroupNotFound") == std::string::npos;
    if (!view.ok() && !missing) {
        if (view.stderr_text.find("ResourceGroupNotFound") != std::string::npos) {
            return "resource group '" + spec.vm.resource_group + "' does not exist: create it with az group create -n " +
                   spec.vm.resource_group + " -l " + spec.location;
        }
        return *view.error;
    }
    std::optional<std::string> state;
    if (missing) tracker.set_vm(azops::VmInfo{{}, {}, {}, {}, std::string("absent"), {}});
    if (!missing) {
        const azops::AzureVmStatus existing = azops::parse_instance_view(view.stdout_text);
        if (existing.error) return *existing.error;
        state = existing.state;
        tracker.set_vm(azops::VmInfo{std::nullopt, existing.size, existing.region, std::nullopt, existing.state,
                                     std::nullopt});
    }
    session.follow_vm(cli, spec.vm);
    if (!state) {
        tracker.detail("Creating VM " + spec.vm.name + " (" + spec.size + ", " + spec.location + ")");
        session.log_command(azops::create_command(spec, o.az));
        const azops::AzVmCreateResult created = cli.create(spec, &cancel);
        log_az_output(session, created.command, true);
        if (created.command.failure == azops::AzFailure::cancelled) {
            tracker.notice("az vm create was interrupted, but Azure may still create the VM: check with " +
                           azops::format_command(az_argv(o, {"vm", "show", "-d", "-g", spec.vm.resource_group, "-n",
                                                             spec.vm.name})));
            return std::nullopt;
        }
        if (!created.command.ok()) {
            // A failed create may still have left a VM behind (it is then billed): ask Azure.
            const azops::AzureVmStatus after = cli.vm_status(spec.vm);
            const bool gone = after.error && after.error->find("(ResourceNotFound)") != std::string::npos;
            if (gone || !after.error) {
                tracker.set_vm(azops::VmInfo{{}, {}, {}, gone ? std::nullopt : after.ip, gone ? "absent" : after.state, {}});
            }
            return *created.command.error;
        }
        tracker.set_vm(azops::VmInfo{created.vm.name, created.vm.size, created.vm.region, created.vm.ip,
                                     created.vm.state, std::nullopt});
        if (created.vm.ip) remote.ip = *created.vm.ip;
    } else if (*state == "running" || *state == "starting" || *state == "unknown") {  // unknown: still being created
        tracker.detail("VM " + spec.vm.name + " exists and is " + *state + ": using it");
    } else {
        tracker.detail("VM " + spec.vm.name + " exists and is " + *state + ": starting it");
        const std::vector<std::string> start_args{"vm", "start", "-g", spec.vm.resource_group, "-n", spec.vm.name};
        session.log_command(az_argv(o, start_args));
        const azops::AzCommandResult started = cli.run(start_args, cli.options().create_timeout, &cancel);
        log_az_output(session, started, true);
        if (started.failure == azops::AzFailure::cancelled) return std::nullopt;
        if (!started.ok()) return *started.error;
    }
    const azops::AzureVmStatus now = cli.vm_status(spec.vm, &cancel);
    if (cancel.cancelled()) return std::nullopt;
    if (now.error) return *now.error;
    tracker.set_vm(azops::VmInfo{now.name, now.size, now.region, now.ip, now.state, std::nullopt});
    if (remote.ip.empty()) {
        if (!now.ip) return "VM " + spec.vm.name + " has no public IP address";
        remote.ip = *now.ip;
    }
    return std::nullopt;
}

// Without vm_create: the VM must exist; its IP comes from --ip or az, its state from az.
std::optional<std::string> find_vm(Session& session, const azops::AzCli& cli, const azops::AzureVm& vm,
                                   RemoteTarget& remote) {
    session.follow_vm(cli, vm);
    if (!remote.ip.empty()) {
        session.tracker().set_vm(azops::VmInfo{vm.name, session.options().vm_size, session.options().region, remote.ip,
                                               std::nullopt, std::nullopt});
        return std::nullopt;
    }
    const azops::AzureVmStatus status = cli.vm_status(vm);
    if (status.error) return "cannot find the VM's address: " + *status.error + " (or give it with --ip)";
    session.tracker().set_vm(azops::VmInfo{status.name, status.size, status.region, status.ip, status.state, std::nullopt});
    if (!status.ip) return "VM " + vm.name + " has no public IP address (is it deallocated?)";
    remote.ip = *status.ip;
    return std::nullopt;
}

// A fresh VM's sshd may not answer for a little while after az says it runs.
CommandResult run_first_ssh(Session& session, const std::vector<std::string>& argv) {
    CommandResult r;
    for (int attempt = 1; attempt <= 6; ++attempt) {
        r = session.run_command(argv);
        if (!r.exit || r.exit->code != 255 || session.stop().requested() || attempt == 6) break;
        session.tracker().detail("ssh cannot connect yet (attempt " + std::to_string(attempt) + "), retrying in 10 s");
        if (session.stop().wait_for(std::chrono::seconds(10), session.stop().generation())) break;
    }
    return r;
}

std::optional<std::string> real_docker_install(Session& session, const RemoteTarget& remote) {
    azops::Tracker& tracker = session.tracker();
    namespace rc = azops_cli::remote;
    tracker.operation("docker_install", 3);
    tracker.step(1, 3, "Installing Docker (get.docker.com)");
    CommandResult r = run_first_ssh(session, azops_cli::ssh_command(remote, rc::install_docker()));
    if (!r.succeeded()) return failure_text(r, "installing Docker failed");
    if (session.stop().requested()) return std::nullopt;
    tracker.step(2, 3, "Configuring Docker: data on /mnt, user in the docker group");
    r = session.run_command(azops_cli::ssh_command(remote, rc::configure_docker()));
    if (!r.succeeded()) return failure_text(r, "configuring Docker failed");
    if (session.stop().requested()) return std::nullopt;
    tracker.step(3, 3, "Checking nested virtualization (/dev/kvm)");
    r = session.run_command(azops_cli::ssh_command(remote, rc::check_nested_virtualization()));
    if (!r.succeeded()) return failure_text(r, "this VM cannot run Windows in QEMU");
    return std::nullopt;
}

std::optional<std::string> real_docker_build(Session& session, const RemoteTarget& remote, const std::string& context) {
    namespace rc = azops_cli::remote;
    session.tracker().operation("docker_build");
    CommandResult r = session.run_command(azops_cli::ssh_command(remote, rc::clear_build_folder()));
    if (!r.succeeded()) return failure_text(r, "preparing the build folder failed");
    if (session.stop().requested()) return std::nullopt;
    r = session.run_command(azops_cli::scp_command(remote, context, "waa-build"));
    if (!r.succeeded()) return failure_text(r, "copying the build context failed");
    if (session.stop().requested()) return std::nullopt;
    r = session.run_command(azops_cli::ssh_command(remote, rc::docker_build()));
    if (session.stop().requested()) {
        // The build runs detached on the VM: stop it there too.
        session.run_command(azops_cli::ssh_command(remote, rc::stop_docker_build()),
                            CommandOptions{{}, [](bool) { return false; }, true});
        return std::nullopt;
    }
    if (!r.succeeded()) return failure_text(r, "the docker build failed");
    return std::nullopt;
}

std::optional<std::string> real_windows_boot(Session& session, const RemoteTarget& remote, const SetupOptions& setup) {
    namespace rc = azops_cli::remote;
    azops::Tracker& tracker = session.tracker();
    azops_cli::StopControl& stop = session.stop();
    tracker.operation("windows_boot", azops_cli::windows_boot_steps);
    CommandResult r = session.run_command(azops_cli::ssh_command(remote, rc::start_windows_container()));
    if (!r.succeeded()) return failure_text(r, "starting the Windows container failed");
    if (stop.requested()) return std::nullopt;

    std::optional<std::string> boot_error;
    bool started = false;
    CommandOptions follow;
    follow.on_line = [&](std::string_view line) {
        const std::string_view marker = "\xE2\x9D\xAF ERROR: ";  // "❯ ERROR: "
        if (const auto at = line.find(marker); at != std::string_view::npos) boot_error = std::string(line.substr(at + marker.size()));
        started = started || line.find("Windows started successfully") != std::string_view::npos;
        return started || boot_error.has_value();
    };
    r = session.run_command(azops_cli::ssh_command(remote, rc::follow_windows_log()), follow);
    if (stop.requested()) return std::nullopt;
    if (boot_error) return "Windows did not start: " + *boot_error;
    if (!started) return failure_text(r, "the Windows container's log ended before Windows started");

    const std::string tunnel = azops::format_command(
        {remote.ssh, "-N", "-L", "8006:localhost:8006", remote.user + "@" + remote.ip});
    const auto deadline = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(setup.probe_timeout_minutes * 60));
    const auto interval = std::chrono::duration<double>(setup.probe_interval_seconds);
    char every[32];
    std::snprintf(every, sizeof every, "%g s", setup.probe_interval_seconds);
    bool vnc_known = false;
    tracker.step(azops_cli::windows_boot_steps, azops_cli::windows_boot_steps, "Waiting for the WAA server");
    for (int attempt = 1;; ++attempt) {
        if (!vnc_known) {
            if (const auto vnc = azops::probe_vnc("127.0.0.1", 8006)) {
                vnc_known = true;
                tracker.set_vm(azops::VmInfo{{}, {}, {}, {}, {}, *vnc});
            }
        }
        tracker.phase("waiting_for_waa_server",
                      "Windows is installing: the WAA server does not answer yet (probe " + std::to_string(attempt) +
                          ", every " + every + ")" + (vnc_known ? std::string() : "; to watch the screen: " + tunnel));
        CommandOptions probe;
        probe.log_command_line = attempt == 1;
        r = session.run_command(azops_cli::ssh_command(remote, rc::probe_waa_server()), probe);
        if (stop.requested()) return std::nullopt;
        if (r.succeeded() && r.last_line.find("Service is operational") != std::string::npos) break;
        if (std::chrono::steady_clock::now() + interval > deadline) {
            return "the WAA server did not answer within " +
                   azops_cli::detail::short_duration(setup.probe_timeout_minutes * 60) +
                   " of Windows starting: look at the screen over VNC (" + tunnel +
                   ", then http://localhost:8006) for a product-key prompt or a stuck setup";
        }
        if (stop.wait_for(interval, stop.generation())) return std::nullopt;
    }
    tracker.phase("waa_server_ready", "The WAA server answers: Service is operational");
    return std::nullopt;
}

// How the task ends: a stop request wins (an idle deallocation under a stall is a failure),
// then the operation's error.
void end_task(Session& session, const std::optional<std::string>& error) {
    azops_cli::StopControl& stop = session.stop();
    azops::Tracker& tracker = session.tracker();
    if (stop.requested()) {
        const auto notice = tracker.snapshot().notice;
        if (notice && notice->rfind("stop requested", 0) == 0) tracker.notice(std::nullopt);  // answered now
        if (stop.cause() == azops_cli::StopCause::idle_deallocated) tracker.fail(stop.reason());
        else tracker.cancel(stop.reason());
    } else if (error) {
        tracker.fail(*error);
    } else {
        tracker.succeed();
    }
}

void run_real(Session& session, const SetupOptions& setup, const std::vector<std::string>& ops) {
    const CommonOptions& o = session.options();
    const azops::AzCli cli(azops::AzCliOptions{o.az, std::chrono::milliseconds(60000),
                                               std::chrono::milliseconds(20 * 60 * 1000), {}});
    const azops::VmCreateSpec spec = create_spec(o, setup);
    RemoteTarget remote = remote_target(o);
    std::optional<std::string> error;
    if (!selected(ops, "vm_create")) error = find_vm(session, cli, spec.vm, remote);
    for (const std::string& op : ops) {
        if (error || session.stop().requested()) break;
        if (op == "vm_create") error = real_vm_create(session, cli, spec, remote);
        else if (op == "docker_install") error = real_docker_install(session, remote);
        else if (op == "docker_build") error = real_docker_build(session, remote, setup.build_context);
        else error = real_windows_boot(session, remote, setup);
    }
    end_task(session, error);
}

// ---- the simulated run ----

void run_simulated(Session& session, const azops_cli::sim::SetupScript& plan) {
    const azops_cli::sim::ScaledClock& clock = *session.scaled_clock();
    azops_cli::sim::Player player(clock, session.tracker(), session.stop(), [&session](std::string_view line) {
        if (session.options().show_output) session.terminal().echo_output(line);
    });
    const auto result = player.play(plan.script, clock.seconds(), azops_cli::sim::StopPolicy::at_once);
    end_task(session, result.failure);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{
        "setup_waa " AZOPS_VERSION_STRING
        " - create an Azure VM and make Windows Agent Arena (WAA) ready on it, with a live dashboard.\n\n"
        "It runs the four operations of a WAA setup in order: vm_create (az vm create, or reuse or start the VM if it "
        "exists), docker_install (Docker on the VM, over ssh), docker_build (the waa-auto image, built on the VM from "
        "--build-context) and windows_boot (the Windows container's first boot, then the WAA server's /probe until it "
        "answers). A browser page shows each operation's step, progress, ETA, the cost so far and projected, the VM's "
        "state, a VNC link and the live log; the same status goes to --status-file. Every finished operation records "
        "its durations in --history, so the next run's ETA knows them. Stop from the page or with Ctrl-C.\n\n"
        "Try it without Azure: --simulate replays a realistic 30-minute setup in about a minute.\n\n"
        "Exit codes: 0 succeeded, 1 failed, 130 cancelled (Stop or Ctrl-C), 2 usage error."};
    app.footer(
        "Examples:\n"
        "  setup_waa --simulate                          replay a whole setup in about a minute\n"
        "  setup_waa --dry-run                           print the commands a real run executes\n"
        "  setup_waa --build-context ./waa_deploy --idle-deallocate 60\n"
        "                                                set up for real; deallocate the VM after an idle hour");
    app.set_version_flag("--version", AZOPS_VERSION_STRING);
    CommonOptions common;
    SetupOptions setup;
    azops_cli::add_common_options(app, common);
    app.add_option("--only", setup.only,
                   "Run only these operations (comma-separated, in the usual order): vm_create, docker_install, "
                   "docker_build, windows_boot")
        ->delimiter(',')
        ->check(CLI::IsMember(setup_operations));
    app.add_option("--build-context", setup.build_context,
                   "Local folder with the waa-auto Dockerfile and its files, copied to the VM for docker_build")
        ->capture_default_str();
    app.add_option("--os-disk-gb", setup.os_disk_gb, "OS disk of a VM that vm_create creates, in GB")
        ->capture_default_str()
        ->check(CLI::Range(30, 4095));
    app.add_option("--probe-timeout", setup.probe_timeout_minutes,
                   "Minutes to wait for the WAA server's /probe after Windows started")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--probe-interval", setup.probe_interval_seconds, "Seconds between two probes of the WAA server")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
    app.add_option("--simulate-fault", setup.fault,
                   "With --simulate: make the run fail the way real ones do: quota, build-error, boot-error, or stall "
                   "(25 silent minutes in the docker build)")
        ->capture_default_str()
        ->check(CLI::IsMember({"none", "quota", "build-error", "boot-error", "stall"}));
    if (const auto code = azops_cli::parse_command_line(app, argc, argv)) return *code;

    std::vector<std::string> ops;
    for (const std::string& op : setup_operations) {
        if (setup.only.empty() || selected(setup.only, op)) ops.push_back(op);
    }
    if (common.dry_run) return print_dry_run(common, setup, ops);
    if (!common.simulate && selected(ops, "docker_build") &&
        !std::filesystem::is_regular_file(std::filesystem::path(setup.build_context) / "Dockerfile")) {
        std::cerr << "setup_waa: --build-context " << setup.build_context
                  << " has no Dockerfile; give the folder with the waa-auto Dockerfile (or --only without "
                     "docker_build, or --simulate)\n";
        return azops_cli::exit_usage;
    }

    try {
        std::optional<azops_cli::sim::SetupScript> plan;
        std::optional<double> speed;
        if (common.simulate) {
            azops_cli::sim::SetupSimulation simulation;
            simulation.vm = create_spec(common, setup);
            simulation.operations = ops;
            simulation.az = common.az;
            simulation.remote = remote_target(common);
            simulation.seed = common.seed;
            simulation.fault = *azops_cli::sim::parse_fault(setup.fault);
            plan = azops_cli::sim::setup_waa_script(simulation, setup.build_context);
            speed = azops_cli::simulation_speed(common, plan->script.duration());
        }
        Session session(common, azops_cli::SessionSpec{"setup_waa", ops, speed});
        if (speed) {
            session.say("simulating a " + azops_cli::detail::short_duration(plan->script.duration()) + " setup at " +
                        std::to_string(static_cast<int>(*speed + 0.5)) + "x (nothing runs on Azure)");
        }
        azops::Tracker& tracker = session.tracker();
        tracker.on_cancel([&session] {
            session.stop().request(azops_cli::StopCause::user, "stopped from the dashboard");
        });
        if (common.idle_deallocate_minutes) session.enable_idle_deallocation(azops_cli::idle_options(session, common));
        session.serve_dashboard();
        session.start_terminal();
        tracker.begin("setup-waa");
        if (plan) run_simulated(session, *plan);
        else run_real(session, setup, ops);
        return session.finish();
    } catch (const std::exception& e) {
        std::cerr << "setup_waa: " << e.what() << "\n";
        return azops_cli::exit_failed;
    }
}
