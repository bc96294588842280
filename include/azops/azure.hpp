// azops/azure.hpp — the Azure side, through the `az` command and its JSON output.
//
// Owns: reading a VM's power state, public IP, size, region and name from the JSON that
// `az vm get-instance-view`, `az vm show -d` and `az vm create` print (pure functions); `AzCli`,
// which runs `az` with a timeout, stdout and stderr captured apart (az prints warnings on stderr even
// when it succeeds), and turns every failure into one clear sentence; the argv of `az vm create`;
// `VmStatePoller`, which asks for the VM's state on a background thread; `probe_vnc`, which tells
// whether the noVNC viewer's tunnel answers.
// Thread-safety: the parsers and `probe_vnc` are pure; a const `AzCli` may run commands from several
// threads at once; `AzCancelToken::cancel` may be called from any thread or a signal handler;
// `VmStatePoller`'s members may be called from any thread; its callback runs on the poller's own
// thread and must not destroy the poller.
// Errors: nothing here throws into the caller except std::bad_alloc and the constructors of
// `AzCancelToken` and `VmStatePoller` (std::system_error when the system has no pipe or thread left,
// at setup). A command that fails — az missing, not logged in, VM not found, timeout, output that is
// not what az prints — gives state "unknown" and a message in `error`.
#pragma once

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <azops/detail/text.hpp>
#include <azops/log_tail.hpp>
#include <azops/process.hpp>

namespace azops {

// A VM as az names it.
struct AzureVm {
    std::string resource_group;
    std::string name;
};

// What azops knows of a VM at one moment. `state` is one of DESIGN.md's `vm_state` words; it is
// "unknown" whenever `error` is set.
struct AzureVmStatus {
    std::string state = "unknown";
    std::optional<std::string> ip;  // the first public IP; absent when the VM has none (deallocated)
    std::optional<std::string> size;
    std::optional<std::string> region;
    std::optional<std::string> name;
    std::optional<std::string> error;
};

// Why a command failed, for callers that branch on it; `AzCommandResult::error` says it in words.
enum class AzFailure {
    none,
    cannot_start,       // az is not installed, or the path given is not an executable
    not_logged_in,      // no login, or it expired
    not_found,          // the VM or its resource group does not exist
    timed_out,          // az did not finish in time and was stopped
    cancelled,          // the caller stopped it (AzCancelToken)
    exited,             // any other non-zero exit
    unexpected_output,  // exit code 0, but not the JSON that command prints
};

// One run of az.
struct AzCommandResult {
    int exit_code = -1;  // -1 when az did not start, timed out or was cancelled
    std::string stdout_text;
    std::string stderr_text;
    AzFailure failure = AzFailure::none;
    std::optional<std::string> error;

    bool ok() const noexcept { return failure == AzFailure::none; }
};

// What `az vm create` needs. The defaults are the WAA setup's: Ddsv5 sizes run nested
// virtualisation (needed for Windows in QEMU) and have a large temp disk; 4 vCPU sizes run out of
// memory during the benchmark.
struct VmCreateSpec {
    AzureVm vm;
    std::string size = "Standard_D8ds_v5";
    std::string location = "eastus";
    std::string image = "Ubuntu2204";
    std::string admin_user = "azureuser";
    // The image's 30 GB disk does not hold the WAA image build and a Windows disk; 128 GB does.
    int os_disk_gb = 128;
};

struct AzVmCreateResult {
    AzCommandResult command;
    AzureVmStatus vm;
};

namespace detail::az {

using text::lower_ascii;
using text::trim_space;

inline bool starts_with_ignoring_case(std::string_view text, std::string_view prefix) noexcept {
    if (text.size() < prefix.size()) return false;
    for (std::size_t i = 0; i < prefix.size(); ++i) {
        if (lower_ascii(text[i]) != lower_ascii(prefix[i])) return false;
    }
    return true;
}

// At most `limit` characters of what az printed, on one line (each run of blanks and control
// characters becomes one space), never cut inside a UTF-8 sequence, and valid UTF-8 (it goes into
// the status file).
inline std::string preview(std::string_view text, std::size_t limit = 200) {
    std::string out;
    std::size_t chars = 0;
    bool blank_pending = false;
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte <= 0x20 || byte == 0x7F) {
            blank_pending = !out.empty();
            continue;
        }
        if ((byte & 0xC0) != 0x80) {  // the first byte of a character
            if (chars + (blank_pending ? 1 : 0) >= limit) return out + "\xE2\x80\xA6";  // "…"
            if (blank_pending) out += ' ';
            chars += blank_pending ? 2 : 1;
            blank_pending = false;
        }
        out += c;
    }
    return out.empty() ? "(nothing)" : sanitize_line(out);
}

inline std::string unexpected_output_message(std::string_view printed) {
    return "az printed something unexpected: " + preview(printed);
}

inline AzureVmStatus failed_status(std::string message) {
    AzureVmStatus status;
    status.error = std::move(message);
    return status;
}

inline const nlohmann::json* member(const nlohmann::json& object, const char* key) {
    if (!object.is_object()) return nullptr;
    const auto it = object.find(key);
    return it == object.end() ? nullptr : &*it;
}

inline std::optional<std::string> text_member(const nlohmann::json& object, const char* key) {
    const nlohmann::json* value = member(object, key);
    if (value == nullptr || !value->is_string()) return std::nullopt;
    std::string text = value->get<std::string>();
    if (text.empty()) return std::nullopt;
    return text;
}

// `show -d` joins several addresses with commas ("203.0.113.47,203.0.113.48").
inline std::optional<std::string> first_address(const std::optional<std::string>& list) {
    if (!list) return std::nullopt;
    const std::string_view first = trim_space(std::string_view(*list).substr(0, list->find(',')));
    if (first.empty()) return std::nullopt;
    return std::string(first);
}

// ".../providers/Microsoft.Compute/virtualMachines/waa-eval-vm" → "waa-eval-vm".
inline std::optional<std::string> name_from_id(const std::optional<std::string>& id) {
    if (!id) return std::nullopt;
    const std::string name = id->substr(id->rfind('/') + 1);
    if (name.empty()) return std::nullopt;
    return name;
}

inline void read_common_fields(const nlohmann::json& vm, AzureVmStatus& status) {
    if (const nlohmann::json* hardware = member(vm, "hardwareProfile")) status.size = text_member(*hardware, "vmSize");
    status.region = text_member(vm, "location");
    status.name = text_member(vm, "name");
}

}  // namespace detail::az

// The vm_state word for a power state as az spells it: "PowerState/running" (instance view codes),
// "VM running" (`show -d`'s powerState, displayStatus) or a bare "running". Anything else is
// "unknown", so a state Azure adds later is never mistaken for one that is billed differently.
inline std::string vm_state_from_power_code(std::string_view code) {
    code = detail::az::trim_space(code);
    for (std::string_view prefix : {std::string_view("PowerState/"), std::string_view("VM ")}) {
        if (detail::az::starts_with_ignoring_case(code, prefix)) {
            code.remove_prefix(prefix.size());
            break;
        }
    }
    for (std::string_view word : {"running", "starting", "stopping", "stopped", "deallocating", "deallocated"}) {
        if (code.size() == word.size() && detail::az::starts_with_ignoring_case(code, word)) return std::string(word);
    }
    return "unknown";
}

// `az vm get-instance-view -g RG -n VM -o json`: the VM object with `instanceView.statuses[]`.
// It never carries an address; `AzCli::vm_status` asks `show -d` for that. A VM still being created
// may have no PowerState status yet: its state is "unknown", without an error.
inline AzureVmStatus parse_instance_view(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    const nlohmann::json* view = vm.is_discarded() ? nullptr : detail::az::member(vm, "instanceView");
    const nlohmann::json* statuses = view == nullptr ? nullptr : detail::az::member(*view, "statuses");
    if (statuses == nullptr || !statuses->is_array()) {
        return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    }
    AzureVmStatus status;
    for (const auto& entry : *statuses) {
        const auto code = detail::az::text_member(entry, "code");
        if (code && detail::az::starts_with_ignoring_case(*code, "PowerState/")) {
            status.state = vm_state_from_power_code(*code);
        }
    }
    detail::az::read_common_fields(vm, status);
    return status;
}

// `az vm show -d -g RG -n VM -o json`: the VM object with `powerState`, `publicIps`, `privateIps`.
inline AzureVmStatus parse_vm_show(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    // Without -d there is no powerState key at all; that is not the output this reads.
    const nlohmann::json* power = vm.is_discarded() ? nullptr : detail::az::member(vm, "powerState");
    if (power == nullptr) return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    AzureVmStatus status;
    if (power->is_string()) status.state = vm_state_from_power_code(power->get<std::string>());
    status.ip = detail::az::first_address(detail::az::text_member(vm, "publicIps"));
    detail::az::read_common_fields(vm, status);
    return status;
}

// `az vm create ... -o json`: `publicIpAddress`, `powerState`, `location` and the VM's `id` (there
// is neither `name` nor the size).
inline AzureVmStatus parse_vm_create(std::string_view json_text) {
    const auto vm = nlohmann::json::parse(json_text, nullptr, false);
    if (vm.is_discarded() || !vm.is_object() || (!vm.contains("publicIpAddress") && !vm.contains("powerState"))) {
        return detail::az::failed_status(detail::az::unexpected_output_message(json_text));
    }
    AzureVmStatus status;
    if (const auto power = detail::az::text_member(vm, "powerState")) status.state = vm_state_from_power_code(*power);
    status.ip = detail::az::first_address(detail::az::text_member(vm, "publicIpAddress"));
    status.region = detail::az::text_member(vm, "location");
    status.name = detail::az::name_from_id(detail::az::text_member(vm, "id"));
    return status;
}

// The argv of `az vm create` for `spec`, starting with `az_path`: printed by a dry run, run by
// `AzCli::create`. `-o json` because a user's `az config` may set another output format.
inline std::vector<std::string> create_command(const VmCreateSpec& spec, std::string_view az_path = "az") {
    return {std::string(az_path), "vm", "create", "-g", spec.vm.resource_group, "-n", spec.vm.name,
            "--image", spec.image, "--size", spec.size, "--location", spec.location,
            "--os-disk-size-gb", std::to_string(spec.os_disk_gb), "--admin-username", spec.admin_user, "--generate-ssh-keys", "--public-ip-sku", "Standard",
            "-o", "json"};
}

// A command line a POSIX shell reads back as the same argv, for printing.
inline std::string format_command(const std::vector<std::string>& argv) {
    const auto plain = [](const std::string& word) {
        return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c)) != 0 || (c != '\0' && std::strchr("@%+=:,./_-", c) != nullptr);
        });
    };
    std::string line;
    for (const auto& word : argv) {
        if (!line.empty()) line += ' ';
        if (plain(word)) {
            line += word;
            continue;
        }
        line += '\'';
        for (char c : word) line += (c == '\'') ? std::string("'\\''") : std::string(1, c);
        line += '\'';
    }
    return line;
}

// A one-shot stop signal for commands in flight: once `cancel` is called, every run that watches this
// token kills its az and returns AzFailure::cancelled, and later runs stop at once.
class AzCancelToken {
public:
    AzCancelToken() {
        if (::pipe2(fds_.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
            throw std::system_error(errno, std::generic_category(), "cannot create a pipe for cancelling az");
        }
    }
    ~AzCancelToken() {
        ::close(fds_[0]);
        ::close(fds_[1]);
    }
    AzCancelToken(const AzCancelToken&) = delete;
    AzCancelToken& operator=(const AzCancelToken&) = delete;

    // Async-signal-safe: it only writes one byte, which stays in the pipe so every waiter sees it.
    void cancel() const noexcept {
        const char byte = 1;
        [[maybe_unused]] const ssize_t n = ::write(fds_[1], &byte, 1);
    }

    bool cancelled() const noexcept {
        pollfd p{fds_[0], POLLIN, 0};
        return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
    }

    // Readable once cancelled, for poll().
    int wait_fd() const noexcept { return fds_[0]; }

private:
    std::array<int, 2> fds_{-1, -1};
};

namespace detail::az {

struct CapturedRun {
    int spawn_errno = 0;  // why the child could not start; 0 when it did
    bool timed_out = false;
    bool cancelled = false;
    int exit_code = -1;
    std::string out;
    std::string err;
};

// The child and the read ends of its pipes; whatever happens, no az is left running or unreaped.
struct CapturedChild {
    pid_t pid = -1;    // until reaped
    pid_t group = -1;  // the child's process group: az is a script that starts python
    int out = -1;
    int err = -1;

    CapturedChild() = default;
    CapturedChild(const CapturedChild&) = delete;
    CapturedChild& operator=(const CapturedChild&) = delete;
    // Only while the leader is unreaped (or members still hold the pipes) is the group id surely
    // still ours: a finished group's id may already name another process group.
    ~CapturedChild() {
        detail::close_fd(out);
        detail::close_fd(err);
        if (pid > 0) {
            kill_group();
            reap_blocking();
        }
    }

    void kill_group() const noexcept {
        if (group > 0) ::kill(-group, SIGKILL);
    }

    std::optional<int> try_reap() noexcept {
        int wstatus = 0;
        const pid_t r = ::waitpid(pid, &wstatus, WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) return std::nullopt;
        pid = -1;
        return r < 0 ? -1 : detail::exit_status_from_wait(wstatus).code;
    }

    int reap_blocking() noexcept {
        int wstatus = 0;
        pid_t r;
        while ((r = ::waitpid(pid, &wstatus, 0)) < 0 && errno == EINTR) {
        }
        pid = -1;
        return r < 0 ? -1 : detail::exit_status_from_wait(wstatus).code;
    }
};

// The inherited environment with `overrides` put in place of (or beside) the variables they name.
inline std::vector<std::string> environment_with(const std::vector<std::pair<std::string, std::string>>& overrides) {
    std::vector<std::string> env;
    for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
        const std::string_view text(*entry);
        const std::string_view name = text.substr(0, text.find('='));
        const bool replaced = std::any_of(overrides.begin(), overrides.end(),
                                          [&](const auto& o) { return o.first == name; });
        if (!replaced) env.emplace_back(text);
    }
    for (const auto& [name, value] : overrides) env.emplace_back(name).append("=").append(value);
    return env;
}

inline int spawn_captured(const std::vector<std::string>& argv, const std::vector<std::string>& env, int out_fd,
                          int err_fd, pid_t& pid) {
    detail::SpawnSetup setup;
    posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 1);
    posix_spawn_file_actions_adddup2(&setup.actions, err_fd, 2);
    posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
    // A program that embeds azops may ignore SIGPIPE or block signals; az must not inherit that.
    const short flags = setup.reset_signals();
    posix_spawnattr_setpgroup(&setup.attr, 0);
    posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | flags);
    std::vector<char*> args = detail::c_argv(argv);
    std::vector<char*> envp = detail::c_argv(env);
    return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), envp.data());
}

// Reads whatever is ready on `fd` into `sink`; closes `fd` at end of file.
inline void read_ready(int& fd, short revents, std::string& sink) {
    if (fd < 0 || (revents & (POLLIN | POLLHUP | POLLERR)) == 0) return;
    std::array<char, 16384> buffer;
    const ssize_t n = ::read(fd, buffer.data(), buffer.size());
    if (n > 0) sink.append(buffer.data(), static_cast<std::size_t>(n));
    else if (n == 0 || errno != EINTR) detail::close_fd(fd);
}

// Runs argv with stdin from /dev/null, stdout and stderr captured apart, until it has exited and
// its output is read, `timeout` passes, or `cancel_fd` (-1: none) becomes readable.
inline CapturedRun run_captured(const std::vector<std::string>& argv,
                                const std::vector<std::pair<std::string, std::string>>& environment,
                                std::chrono::milliseconds timeout, int cancel_fd) {
    using Clock = std::chrono::steady_clock;
    CapturedRun run;
    CapturedChild child;
    std::array<int, 2> out{};
    std::array<int, 2> err{};
    if (::pipe2(out.data(), O_CLOEXEC) != 0) {
        run.spawn_errno = errno;
        return run;
    }
    child.out = out[0];
    if (::pipe2(err.data(), O_CLOEXEC) != 0) {
        run.spawn_errno = errno;
        ::close(out[1]);
        return run;
    }
    child.err = err[0];
    run.spawn_errno = spawn_captured(argv, environment_with(environment), out[1], err[1], child.pid);
    ::close(out[1]);
    ::close(err[1]);
    if (run.spawn_errno != 0) {
        child.pid = -1;
        return run;
    }
    child.group = child.pid;

    const auto deadline = Clock::now() + timeout;
    std::optional<Clock::time_point> drain_deadline;
    std::optional<int> exit_code;
    while (!exit_code || child.out >= 0 || child.err >= 0) {
        const auto now = Clock::now();
        if (now >= deadline) {
            run.timed_out = true;
            return run;  // ~CapturedChild kills the group and reaps
        }
        // The leader is gone but something it started still holds the pipes (so the group lives on).
        if (drain_deadline && now >= *drain_deadline) {
            child.kill_group();
            break;
        }
        const bool pipes_open = child.out >= 0 || child.err >= 0;
        const auto slice = std::min<Clock::duration>(deadline - now, pipes_open ? std::chrono::milliseconds(100)
                                                                                : std::chrono::milliseconds(5));
        std::array<pollfd, 3> fds{{{child.out, POLLIN, 0}, {child.err, POLLIN, 0}, {cancel_fd, POLLIN, 0}}};
        const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(slice).count();
        if (::poll(fds.data(), fds.size(), static_cast<int>(std::max<long long>(wait_ms, 1))) < 0 && errno != EINTR) {
            run.spawn_errno = errno;
            return run;
        }
        if ((fds[2].revents & POLLIN) != 0) {
            run.cancelled = true;
            return run;
        }
        read_ready(child.out, fds[0].revents, run.out);
        read_ready(child.err, fds[1].revents, run.err);
        if (!exit_code) {
            exit_code = child.try_reap();
            if (exit_code) drain_deadline = Clock::now() + std::chrono::milliseconds(500);
        }
    }
    run.exit_code = *exit_code;
    return run;
}

inline std::string describe_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + " s";
    return std::to_string(d.count()) + " ms";
}

inline std::string missing_message(std::string_view az_path) {
    if (az_path.find('/') != std::string_view::npos) {
        return "the Azure CLI was not found at " + std::string(az_path) + "; install it or pass --az PATH";
    }
    return "the Azure CLI (" + std::string(az_path) + ") was not found on PATH; install it or pass --az PATH";
}

// The line of az's stderr that says what went wrong: the first that is not a warning.
inline std::string stderr_reason(std::string_view err) {
    while (!err.empty()) {
        const auto end = err.find('\n');
        std::string_view line = trim_space(err.substr(0, end));
        err = end == std::string_view::npos ? std::string_view() : err.substr(end + 1);
        if (line.empty() || starts_with_ignoring_case(line, "WARNING:")) continue;
        if (starts_with_ignoring_case(line, "ERROR:")) line = trim_space(line.substr(6));
        return preview(line);
    }
    return {};
}

inline void classify(const CapturedRun& run, std::string_view az_path, std::chrono::milliseconds timeout,
                     AzCommandResult& result) {
    const auto fail = [&](AzFailure failure, std::string message) {
        result.failure = failure;
        result.error = std::move(message);
    };
    if (run.spawn_errno == ENOENT) return fail(AzFailure::cannot_start, missing_message(az_path));
    if (run.spawn_errno == EACCES) {
        return fail(AzFailure::cannot_start, "the Azure CLI at " + std::string(az_path) +
                                                 " cannot be run (permission denied); install it or pass --az PATH");
    }
    if (run.spawn_errno != 0) {
        return fail(AzFailure::cannot_start, "cannot run the Azure CLI (" + std::string(az_path) +
                                                 "): " + std::generic_category().message(run.spawn_errno));
    }
    if (run.cancelled) return fail(AzFailure::cancelled, "az was stopped before it answered");
    if (run.timed_out) {
        return fail(AzFailure::timed_out, "az did not answer within " + describe_duration(timeout) +
                                              " and was stopped; check the network, or run the same az command by hand");
    }
    if (run.exit_code == 0) return;
    const std::string_view err = run.err;
    // "Please run 'az login' to setup account." or, once a login expires, "...please run: az login --scope ...".
    if (err.find("az login") != std::string_view::npos) {
        return fail(AzFailure::not_logged_in, "not logged in to Azure (or the login expired): run 'az login', then try again");
    }
    const std::string reason = stderr_reason(err);
    if (err.find("ResourceNotFound") != std::string_view::npos || err.find("ResourceGroupNotFound") != std::string_view::npos) {
        return fail(AzFailure::not_found, "not found on Azure: " + reason);
    }
    if (reason.empty()) return fail(AzFailure::exited, "az exited with code " + std::to_string(run.exit_code) + " and printed no error");
    fail(AzFailure::exited, "az exited with code " + std::to_string(run.exit_code) + ": " + reason);
}

// A not-found error names the VM and group the caller asked for, which az's own text buries.
inline void name_missing_vm(const AzureVm& vm, AzCommandResult& result) {
    if (result.failure != AzFailure::not_found) return;
    if (result.stderr_text.find("ResourceGroupNotFound") != std::string::npos) {
        result.error = "resource group '" + vm.resource_group + "' was not found (ResourceGroupNotFound)";
    } else {
        result.error = "VM '" + vm.name + "' was not found in resource group '" + vm.resource_group + "' (ResourceNotFound)";
    }
}

}  // namespace detail::az

struct AzCliOptions {
    std::string path = "az";  // a name looked up on PATH, or a path
    std::chrono::milliseconds timeout{60000};  // every command but create
    std::chrono::milliseconds create_timeout{20 * 60 * 1000};  // create waits for provisioning
    // Variables set for az on top of the inherited environment (e.g. AZURE_CONFIG_DIR for another login).
    std::vector<std::pair<std::string, std::string>> environment;
};

class AzCli {
public:
    explicit AzCli(AzCliOptions options = {}) : options_(std::move(options)) {}

    const AzCliOptions& options() const noexcept { return options_; }

    // Runs `az <args...>`; never throws but std::bad_alloc. On success `stdout_text` holds what az
    // printed; otherwise `error` says why in one sentence.
    AzCommandResult run(const std::vector<std::string>& args,
                        std::optional<std::chrono::milliseconds> timeout = std::nullopt,
                        const AzCancelToken* cancel = nullptr) const {
        const auto limit = timeout.value_or(options_.timeout);
        AzCommandResult result;
        if (cancel != nullptr && cancel->cancelled()) {
            result.failure = AzFailure::cancelled;
            result.error = "az was stopped before it answered";
            return result;
        }
        std::vector<std::string> argv;
        argv.reserve(args.size() + 1);
        argv.push_back(options_.path);
        argv.insert(argv.end(), args.begin(), args.end());
        const int cancel_fd = cancel != nullptr ? cancel->wait_fd() : -1;
        auto run = detail::az::run_captured(argv, options_.environment, limit, cancel_fd);
        detail::az::classify(run, options_.path, limit, result);
        result.exit_code = run.exit_code;
        result.stdout_text = std::move(run.out);
        result.stderr_text = std::move(run.err);
        return result;
    }

    // The VM's power state from its instance view, which is the authority on it, and its public IP
    // from `show -d` (the instance view has no addresses). When only `show -d` fails, the state stands
    // without an IP.
    AzureVmStatus vm_status(const AzureVm& vm, const AzCancelToken* cancel = nullptr) const {
        if (vm.resource_group.empty() || vm.name.empty()) {
            return detail::az::failed_status("no VM given: both the resource group and the VM name are needed");
        }
        auto view = run({"vm", "get-instance-view", "-g", vm.resource_group, "-n", vm.name, "-o", "json"}, std::nullopt, cancel);
        detail::az::name_missing_vm(vm, view);
        if (!view.ok()) return detail::az::failed_status(*view.error);
        AzureVmStatus status = parse_instance_view(view.stdout_text);
        if (status.error) return status;
        const auto shown = run({"vm", "show", "-d", "-g", vm.resource_group, "-n", vm.name, "-o", "json"}, std::nullopt, cancel);
        if (!shown.ok()) return status;
        const AzureVmStatus details = parse_vm_show(shown.stdout_text);
        if (details.error) return status;
        status.ip = details.ip;
        if (status.state == "unknown") status.state = details.state;
        if (!status.size) status.size = details.size;
        if (!status.region) status.region = details.region;
        if (!status.name) status.name = details.name;
        return status;
    }

    // Deallocates without waiting for Azure to finish (the poller shows `deallocating` →
    // `deallocated`). Never `az vm stop`: a stopped VM keeps its hardware allocated and Azure keeps
    // billing compute for it; only a deallocated VM stops the compute charge.
    AzCommandResult deallocate(const AzureVm& vm, const AzCancelToken* cancel = nullptr) const {
        auto result = run({"vm", "deallocate", "-g", vm.resource_group, "-n", vm.name, "--no-wait"}, std::nullopt, cancel);
        detail::az::name_missing_vm(vm, result);
        return result;
    }

    // Creates the VM and waits for it (minutes; `create_timeout`). The size is the one asked for:
    // create's output does not repeat it.
    AzVmCreateResult create(const VmCreateSpec& spec, const AzCancelToken* cancel = nullptr) const {
        auto argv = create_command(spec);
        argv.erase(argv.begin());
        AzVmCreateResult result;
        result.command = run(argv, options_.create_timeout, cancel);
        if (!result.command.ok()) {
            result.vm = detail::az::failed_status(*result.command.error);
            return result;
        }
        result.vm = parse_vm_create(result.command.stdout_text);
        if (result.vm.error) {
            result.command.failure = AzFailure::unexpected_output;
            result.command.error = result.vm.error;
            return result;
        }
        result.vm.size = spec.size;
        if (!result.vm.name) result.vm.name = spec.vm.name;
        return result;
    }

private:
    AzCliOptions options_;
};

// Asks for the VM's state every `interval` on its own thread, from construction until destruction
// (or `stop`), and hands each answer to `on_status` on that thread. The first answer is asked for
// at once. Stopping is prompt: it wakes the wait and kills an az in flight, whose answer is then
// dropped. `on_status` must not destroy the poller; an exception it throws is dropped, because
// nothing on the poller's thread could handle it.
class VmStatePoller {
public:
    using Callback = std::function<void(const AzureVmStatus&)>;

    VmStatePoller(AzCli cli, AzureVm vm, Callback on_status,
                  std::chrono::milliseconds interval = std::chrono::seconds(30))
        : cli_(std::move(cli)), vm_(std::move(vm)), on_status_(std::move(on_status)), interval_(interval),
          thread_([this] { loop(); }) {}

    ~VmStatePoller() { stop(); }

    VmStatePoller(const VmStatePoller&) = delete;
    VmStatePoller& operator=(const VmStatePoller&) = delete;

    // Ends polling and waits for the thread (except when called from `on_status`, on that thread);
    // safe to call more than once.
    void stop() noexcept {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        cancel_.cancel();
        wake_.notify_all();
        if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    }

    // Asks again now rather than at the end of the interval, e.g. right after a deallocate.
    void poll_now() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            poll_requested_ = true;
        }
        wake_.notify_all();
    }

    std::optional<AzureVmStatus> latest() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return latest_;
    }

private:
    void loop() {
        while (true) {
            AzureVmStatus status = cli_.vm_status(vm_, &cancel_);
            if (cancel_.cancelled()) return;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                latest_ = status;
            }
            try {
                on_status_(status);
            } catch (...) {
            }
            std::unique_lock<std::mutex> lock(mutex_);
            wake_.wait_for(lock, interval_, [this] { return stopping_ || poll_requested_; });
            if (stopping_) return;
            poll_requested_ = false;
        }
    }

    const AzCli cli_;
    const AzureVm vm_;
    const Callback on_status_;
    const std::chrono::milliseconds interval_;
    AzCancelToken cancel_;
    mutable std::mutex mutex_;
    std::condition_variable wake_;
    bool stopping_ = false;
    bool poll_requested_ = false;
    std::optional<AzureVmStatus> latest_;
    std::thread thread_;  // last: it starts once everything above exists
};

// The noVNC viewer's URL once something accepts a TCP connection on `host`:`port` within `timeout`,
// else std::nullopt. `host` is where the SSH tunnel to the VM's port 8006 listens on this machine:
// a numeric address or "localhost" (names are not resolved, so the timeout holds); the URL names
// localhost, as the browser reaches the tunnel on this machine.
inline std::optional<std::string> probe_vnc(const std::string& host = "127.0.0.1", int port = 8006,
                                            std::chrono::milliseconds timeout = std::chrono::milliseconds(1000)) {
    if (port < 1 || port > 65535) return std::nullopt;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    const std::vector<std::string> addresses =
        host == "localhost" ? std::vector<std::string>{"127.0.0.1", "::1"} : std::vector<std::string>{host};
    const std::string service = std::to_string(port);
    for (const auto& address : addresses) {
        addrinfo hints{};
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
        addrinfo* found = nullptr;
        if (::getaddrinfo(address.c_str(), service.c_str(), &hints, &found) != 0) continue;
        bool connected = false;
        for (const addrinfo* a = found; a != nullptr && !connected; a = a->ai_next) {
            const int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
            if (fd < 0) continue;
            if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
                connected = true;
            } else if (errno == EINPROGRESS) {
                const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now());
                pollfd p{fd, POLLOUT, 0};
                int error = 0;
                socklen_t length = sizeof error;
                connected = left.count() > 0 && ::poll(&p, 1, static_cast<int>(left.count())) == 1 &&
                            ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
            }
            ::close(fd);
        }
        ::freeaddrinfo(found);
        if (connected) return "http://localhost:" + service;
    }
    return std::nullopt;
}

}  // namespace azops
