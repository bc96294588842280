// Faults azops must survive: writers killed with SIGKILL mid-write, a full disk, a status file that
// goes missing or turns to garbage under a live server, and the rows of the reliability test table
// (reference: reliability_anchors.md §8) that the per-header tests do not cover.
//
// Killed writers are real processes: tests/fault_writer.cpp, whose path comes in AZOPS_FAULT_WRITER.
// The full-disk and bind-mount tests mount in a private mount namespace of a forked child (as root,
// or in a user namespace otherwise), so nothing is ever mounted for the rest of the machine. Every
// random choice comes from one fixed seed; waits poll a condition against a deadline. This program
// defines fsync(2) and rename(3) itself, forwarding both, to count them (row 11): keep it apart
// from other test programs.
#include <azops/history.hpp>
#include <azops/log_tail.hpp>
#include <azops/process.hpp>
#include <azops/server.hpp>
#include <azops/status.hpp>
#include <azops/status_writer.hpp>
#include <azops/tracker.hpp>

#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef AZOPS_FAULT_WRITER
#error "define AZOPS_FAULT_WRITER as the path of the fault_writer program built from tests/fault_writer.cpp"
#endif
#ifndef AZOPS_CLI_PATH
#error "define AZOPS_CLI_PATH as the path of the azops program"
#endif

// ---- An fs shim (row 11): counts fsync and rename calls while a test asks it to. ----
// Defined in this program, these take the place of libc's for every call compiled into it (the
// headers under test included); they forward to the kernel and change nothing else.

namespace {
namespace fs_shim {

std::mutex mutex;
std::vector<std::string> events;
std::atomic<bool> recording{false};

std::string fd_path(int fd) {
    char link[64];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    char target[4096];
    const ssize_t n = ::readlink(link, target, sizeof target - 1);
    return n > 0 ? std::string(target, static_cast<std::size_t>(n)) : std::string("?");
}

void note(std::string event) {
    std::lock_guard<std::mutex> lock(mutex);
    events.push_back(std::move(event));
}

void start() {
    std::lock_guard<std::mutex> lock(mutex);
    events.clear();
    recording.store(true);
}

std::vector<std::string> stop() {
    recording.store(false);
    std::lock_guard<std::mutex> lock(mutex);
    return events;
}

}  // namespace fs_shim
}  // namespace

extern "C" int fsync(int fd) {
    if (fs_shim::recording.load()) {
        struct stat st {};
        const bool folder = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
        fs_shim::note(std::string(folder ? "fsync folder " : "fsync file ") + fs_shim::fd_path(fd));
    }
    return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int rename(const char* from, const char* to) noexcept {
    if (fs_shim::recording.load()) fs_shim::note(std::string("rename ") + from + " -> " + to);
    return ::renameat(AT_FDCWD, from, AT_FDCWD, to);
}

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using SteadyClock = std::chrono::steady_clock;
using azops_test::take_chunks;
using azops_test::read_file;
using azops_test::ScratchDir;
using azops_test::SseItem;

constexpr std::uint32_t kSeed = 20261129;

const std::string kData = AZOPS_TEST_DATA_DIR;
const std::string kStatusName = "azure_ops_status.json";

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }
bool starts_with(std::string_view text, std::string_view prefix) { return text.rfind(prefix, 0) == 0; }

std::vector<std::string> names_in(const fs::path& folder) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
        names.push_back(it->path().filename().string());
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::vector<std::string> temp_files_in(const fs::path& folder) {
    std::vector<std::string> temps;
    for (auto& name : names_in(folder)) {
        if (contains(name, ".tmp.")) temps.push_back(std::move(name));
    }
    return temps;
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
    return out.empty() ? "(none)" : out;
}

// True when nobody holds the lock: a writer killed while holding it must not leave it held.
bool lock_is_free(const fs::path& lock_file) {
    const int fd = ::open(lock_file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    const bool free = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    ::close(fd);
    return free;
}

// A status document the way the Tracker writes it, step `step` of a docker build.
std::string status_document(int step, std::size_t log_lines = 4, std::size_t line_bytes = 90) {
    azops::OpsStatus s;
    s.task = "setup-waa";
    s.state = "running";
    s.operation = "docker_build";
    s.phase = "installing_packages";
    s.step = step;
    s.total_steps = 21;
    s.progress_pct = 100.0 * step / 21;
    s.vm_size = "Standard_D8ds_v5";
    for (std::size_t i = 0; i < log_lines; ++i) {
        std::string line = "#14 " + std::to_string(100 + i) + ".4 Collecting package-" + std::to_string(step) + "-" +
                           std::to_string(i) + " (from -r /client/requirements.txt)";
        line.resize(std::max(line.size(), line_bytes), '.');
        s.log_tail.push_back(std::move(line));
    }
    return azops::to_json_text(s);
}

void pause_for(std::chrono::microseconds d) { std::this_thread::sleep_for(d); }

// ---- Helper processes ----

// A program started with posix_spawn, its stdout a pipe to us; killed and reaped when it goes.
class HelperProcess {
public:
    explicit HelperProcess(const std::vector<std::string>& args, bool quiet_stderr = false) {
        int out[2];
        REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        if (quiet_stderr) posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        const int err = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        out_ = out[0];
        if (err != 0) {
            pid_ = -1;
            FAIL("cannot start " << args[0] << ": " << std::strerror(err));
        }
    }
    ~HelperProcess() {
        kill_and_reap();
        if (out_ >= 0) ::close(out_);
    }
    HelperProcess(const HelperProcess&) = delete;
    HelperProcess& operator=(const HelperProcess&) = delete;

    // The next line it printed; nullopt when none came within `timeout` or its stdout closed.
    std::optional<std::string> next_line(std::chrono::milliseconds timeout) {
        const auto deadline = SteadyClock::now() + timeout;
        for (;;) {
            const auto nl = buffer_.find('\n');
            if (nl != std::string::npos) {
                std::string line = buffer_.substr(0, nl);
                buffer_.erase(0, nl + 1);
                return line;
            }
            if (out_ < 0 || !read_more(deadline)) return std::nullopt;
        }
    }

    // Every complete line still to come, until its stdout closes (call after it died).
    std::vector<std::string> remaining_lines(std::chrono::milliseconds timeout = 5000ms) {
        const auto deadline = SteadyClock::now() + timeout;
        while (out_ >= 0 && read_more(deadline)) {
        }
        std::vector<std::string> lines;
        while (auto line = next_line(0ms)) lines.push_back(std::move(*line));
        return lines;
    }

    // Closes our end of its stdout: from now on its writes there fail (SIGPIPE or EPIPE).
    void close_stdout() {
        if (out_ >= 0) ::close(out_);
        out_ = -1;
    }

    int kill_and_reap(int sig = SIGKILL) {
        int wstatus = 0;
        if (pid_ > 0) {
            ::kill(pid_, sig);
            while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
            }
            pid_ = -1;
        }
        return wstatus;
    }

    // Asks it to stop (SIGTERM); its wait status once it exits within `timeout`, else nullopt.
    std::optional<int> terminate(std::chrono::milliseconds timeout) {
        if (pid_ > 0) ::kill(pid_, SIGTERM);
        return wait_exit(timeout);
    }

    // Its wait status once it exits within `timeout` on its own; nullopt when it does not.
    std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
        if (pid_ <= 0) return std::nullopt;
        int wstatus = 0;
        const bool exited = azops_test::eventually(
            [&] { return ::waitpid(pid_, &wstatus, WNOHANG) == pid_; }, timeout);
        if (!exited) return std::nullopt;
        pid_ = -1;
        return wstatus;
    }

private:
    bool read_more(SteadyClock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        pollfd p{out_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(0, left.count()))) <= 0) return false;
        char chunk[4096];
        const ssize_t n = ::read(out_, chunk, sizeof chunk);
        if (n <= 0) {
            close_stdout();
            return false;
        }
        buffer_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    pid_t pid_ = -1;
    int out_ = -1;
    std::string buffer_;
};

// What happens in one folder, as inotify reports it: files created there and renamed into it.
class FolderWatch {
public:
    explicit FolderWatch(const fs::path& folder) : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {
        REQUIRE(fd_ >= 0);
        REQUIRE(::inotify_add_watch(fd_, folder.c_str(), IN_CREATE | IN_MOVED_TO) >= 0);
    }
    ~FolderWatch() { ::close(fd_); }
    FolderWatch(const FolderWatch&) = delete;
    FolderWatch& operator=(const FolderWatch&) = delete;

    // Drops what happened so far.
    void forget() {
        while (read_events([](std::uint32_t, std::string_view) { return false; })) {
        }
    }

    // Returns as soon as an event in `mask` names a file starting with `prefix` (equal to it when
    // `exact`); false when none comes within `timeout`.
    bool wait_for(std::uint32_t mask, std::string_view prefix, bool exact, std::chrono::milliseconds timeout) {
        const auto deadline = SteadyClock::now() + timeout;
        const auto matches = [&](std::uint32_t m, std::string_view name) {
            return (m & mask) != 0 && (exact ? name == prefix : starts_with(name, prefix));
        };
        for (;;) {
            bool found = false;
            while (!found && read_events([&](std::uint32_t m, std::string_view name) { return found = matches(m, name); })) {
            }
            if (found) return true;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
            if (left.count() <= 0) return false;
            pollfd p{fd_, POLLIN, 0};
            ::poll(&p, 1, static_cast<int>(left.count()));
        }
    }

    // Every name created or renamed into the folder since the last call.
    std::vector<std::string> names() {
        std::vector<std::string> out;
        while (read_events([&](std::uint32_t, std::string_view name) {
            out.emplace_back(name);
            return false;
        })) {
        }
        return out;
    }

private:
    // Reads one batch; `on_event` returning true stops at that event. False when nothing was queued.
    template <typename OnEvent>
    bool read_events(OnEvent&& on_event) {
        alignas(inotify_event) char buf[16384];
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return false;
        for (ssize_t at = 0; at < n;) {
            const auto* e = reinterpret_cast<const inotify_event*>(buf + at);
            at += static_cast<ssize_t>(sizeof(inotify_event) + e->len);
            if (e->len > 0 && on_event(e->mask, std::string_view(e->name))) return true;
        }
        return true;
    }

    int fd_;
};

// ---- A private mount namespace in a forked child ----

// What a check run in the child found; sent back line by line.
class Findings {
public:
    explicit Findings(int fd) : fd_(fd) {}
    void check(bool ok, const std::string& what) {
        if (!ok) send("FAIL", what);
    }
    void info(const std::string& what) { send("INFO", what); }
    void skip(const std::string& why) { send("SKIP", why); }

private:
    void send(const char* kind, std::string text) {
        std::replace(text.begin(), text.end(), '\n', ' ');
        azops::detail::write_all(fd_, std::string(kind) + "\t" + text + "\n");
    }
    int fd_;
};

// Makes this (single-threaded, just forked) process the only one to see its mounts: a new mount
// namespace as root, else a user namespace that maps us to root inside it (`unshare -rm`). Says in
// `how` which it was; returns why neither worked.
std::optional<std::string> enter_private_mount_namespace(std::string& how) {
    std::string first_try;
    how = "a private mount namespace, as root";
    if (::unshare(CLONE_NEWNS) != 0) {
        first_try = std::string("unshare(CLONE_NEWNS): ") + std::strerror(errno);
        const uid_t uid = ::getuid();
        const gid_t gid = ::getgid();
        if (::unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            return first_try + "; unshare(CLONE_NEWUSER | CLONE_NEWNS): " + std::strerror(errno);
        }
        const auto write_proc = [](const char* file, const std::string& text) {
            const int fd = ::open(file, O_WRONLY | O_CLOEXEC);
            const bool ok = fd >= 0 && azops::detail::write_all(fd, text);
            if (fd >= 0) ::close(fd);
            return ok;
        };
        if (!write_proc("/proc/self/setgroups", "deny") ||
            !write_proc("/proc/self/uid_map", "0 " + std::to_string(uid) + " 1\n") ||
            !write_proc("/proc/self/gid_map", "0 " + std::to_string(gid) + " 1\n")) {
            return first_try + "; cannot map our user into the new user namespace";
        }
        how = "a user namespace, uid " + std::to_string(uid) + " mapped to root (" + first_try + ")";
    }
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
        return std::string("cannot make the mounts private: ") + std::strerror(errno);
    }
    return std::nullopt;
}

struct NamespaceRun {
    std::optional<std::string> skipped;  // why it could not run
    std::vector<std::string> failures;
    std::vector<std::string> infos;
};

// Runs `body` in a forked child inside a private mount namespace and collects what it found.
NamespaceRun run_in_private_mounts(const std::function<void(Findings&)>& body) {
    NamespaceRun run;
    int pipe_fds[2];
    REQUIRE(::pipe2(pipe_fds, O_CLOEXEC) == 0);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::close(pipe_fds[0]);
        Findings findings(pipe_fds[1]);
        std::string how;
        if (const auto why = enter_private_mount_namespace(how)) {
            findings.skip(*why);
            ::_exit(0);
        }
        findings.info("mounts made in " + how);
        try {
            body(findings);
        } catch (const std::exception& e) {
            findings.check(false, std::string("exception: ") + e.what());
        }
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string text;
    const auto deadline = SteadyClock::now() + 30s;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
        pollfd p{pipe_fds[0], POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            run.failures.push_back("the child did not finish within 30 s");
            ::kill(child, SIGKILL);
            break;
        }
        char chunk[4096];
        const ssize_t n = ::read(pipe_fds[0], chunk, sizeof chunk);
        if (n <= 0) break;
        text.append(chunk, static_cast<std::size_t>(n));
    }
    ::close(pipe_fds[0]);
    int wstatus = 0;
    ::waitpid(child, &wstatus, 0);
    if (WIFSIGNALED(wstatus)) run.failures.push_back("the child died of signal " + std::to_string(WTERMSIG(wstatus)));
    for (std::size_t at = 0; at < text.size();) {
        const auto nl = text.find('\n', at);
        const std::string line = text.substr(at, nl - at);
        at = nl == std::string::npos ? text.size() : nl + 1;
        const auto tab = line.find('\t');
        const std::string kind = line.substr(0, tab);
        const std::string what = tab == std::string::npos ? std::string() : line.substr(tab + 1);
        if (kind == "SKIP") run.skipped = what;
        else if (kind == "FAIL") run.failures.push_back(what);
        else if (kind == "INFO") run.infos.push_back(what);
    }
    return run;
}

// Reports a namespace run to doctest; a run that could not mount fails only under AZOPS_REQUIRE_TMPFS=1.
void report(const NamespaceRun& run, const char* what) {
    for (const auto& info : run.infos) MESSAGE(info);
    if (run.skipped) {
        MESSAGE("not run: " << what << " needs a private mount (root, or unprivileged user namespaces), and "
                            << *run.skipped);
        const char* required = std::getenv("AZOPS_REQUIRE_TMPFS");
        if (required != nullptr && std::string(required) == "1") {
            FAIL("AZOPS_REQUIRE_TMPFS=1, but " << what << " could not run: " << *run.skipped);
        }
        return;
    }
    for (const auto& failure : run.failures) FAIL_CHECK(failure);
}

// Writes until the file system is full: big blocks, then single bytes to fill the last page.
bool fill_disk(const fs::path& filler, std::string& why) {
    const int fd = ::open(filler.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        why = std::string("cannot create the filler: ") + std::strerror(errno);
        return false;
    }
    const std::string block(64 * 1024, 'f');
    for (std::size_t size = block.size(); size > 0; size = size > 1 ? size / 8 : 0) {
        while (::write(fd, block.data(), size) > 0) {
        }
        if (errno != ENOSPC) {
            why = std::string("filling stopped with ") + std::strerror(errno) + ", not ENOSPC";
            ::close(fd);
            return false;
        }
    }
    ::close(fd);
    // The proof it is full: one more byte in a new file does not fit.
    const fs::path probe = filler.parent_path() / "probe";
    const int p = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    const bool full = p >= 0 && ::write(p, "x", 1) < 0 && errno == ENOSPC;
    if (p >= 0) ::close(p);
    ::unlink(probe.c_str());
    if (!full) why = "the file system still takes writes after filling";
    return full;
}

// ---- HTTP over raw sockets ----

int connect_loopback(int port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    if (fd >= 0) ::close(fd);
    return -1;
}

bool send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Appends what arrives before `deadline`; false once the peer closed (or on error or timeout).
bool receive_some(int fd, std::string& out, SteadyClock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[16384];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    out.append(buf, static_cast<std::size_t>(n));
    return true;
}

// Sends `request` on a new connection and returns everything until the server closes it;
// nullopt when it cannot connect or the server does not close within `timeout`.
std::optional<std::string> http_exchange(int port, std::string_view request, std::chrono::milliseconds timeout = 5000ms) {
    const int fd = connect_loopback(port);
    if (fd < 0) return std::nullopt;
    std::string raw;
    const auto deadline = SteadyClock::now() + timeout;
    bool closed = false;
    if (send_all(fd, request)) {
        while (receive_some(fd, raw, deadline)) {
        }
        closed = SteadyClock::now() < deadline;
    } else {
        closed = true;  // it closed on us while we were still sending
    }
    ::close(fd);
    if (!closed) return std::nullopt;
    return raw;
}

std::string lower(std::string s) {
    for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
    return s;
}

struct Reply {
    int status = 0;
    std::string head;  // header lines, names in lower case
    std::string body;
};

std::optional<Reply> parse_reply(const std::string& raw) {
    const auto end = raw.find("\r\n\r\n");
    if (end == std::string::npos || !starts_with(raw, "HTTP/1.1 ") || raw.size() < 12) return std::nullopt;
    Reply r;
    r.status = std::atoi(raw.substr(9, 3).c_str());
    r.head = lower(raw.substr(0, end + 2));
    std::string rest = raw.substr(end + 4);
    if (contains(r.head, "\r\ntransfer-encoding: chunked\r\n")) r.body += take_chunks(rest);
    else r.body = rest;
    return r;
}

std::string get_request(int port, std::string_view path) {
    return "GET " + std::string(path) + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
           "\r\nConnection: close\r\n\r\n";
}

std::optional<Reply> http_get(int port, std::string_view path) {
    const auto raw = http_exchange(port, get_request(port, path));
    return raw ? parse_reply(*raw) : std::nullopt;
}

// An event stream read as a browser reads it (comments skipped).
class SseStream {
public:
    explicit SseStream(int port) : fd_(connect_loopback(port)) {
        REQUIRE(fd_ >= 0);
        REQUIRE(send_all(fd_, "GET /api/azure-ops-events HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
                                  "\r\nAccept: text/event-stream\r\n\r\n"));
    }
    ~SseStream() { close(); }
    SseStream(const SseStream&) = delete;
    SseStream& operator=(const SseStream&) = delete;

    int status() const noexcept { return status_; }

    // The next event that satisfies `wanted`; nullopt when none does before `timeout`.
    std::optional<SseItem> next_where(const std::function<bool(const SseItem&)>& wanted,
                                      std::chrono::milliseconds timeout) {
        const auto deadline = SteadyClock::now() + timeout;
        for (;;) {
            while (auto e = take_event()) {
                if (wanted(*e)) return e;
            }
            if (fd_ < 0 || !receive_some(fd_, raw_, deadline)) return std::nullopt;
            if (status_ == 0) {
                const auto end = raw_.find("\r\n\r\n");
                if (end == std::string::npos) continue;
                status_ = starts_with(raw_, "HTTP/1.1 ") ? std::atoi(raw_.substr(9, 3).c_str()) : -1;
                raw_.erase(0, end + 4);
            }
            std::string body;
            body += take_chunks(raw_);
            parser_.feed(body);
        }
    }

    std::optional<SseItem> next(std::chrono::milliseconds timeout) {
        return next_where([](const SseItem&) { return true; }, timeout);
    }

    // Ends the connection; `reset` sends an RST instead of a FIN, as a crashed browser would.
    void close(bool reset = false) {
        if (fd_ < 0) return;
        if (reset) {
            const linger abort{1, 0};
            ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
        }
        ::close(fd_);
        fd_ = -1;
    }

private:
    std::optional<SseItem> take_event() {
        auto item = parser_.next();
        while (item && item->is_comment) item = parser_.next();
        return item;
    }

    int fd_;
    int status_ = 0;
    std::string raw_;
    azops_test::SseParser parser_;
};

std::size_t open_fd_count() { return names_in("/proc/self/fd").size(); }

double process_cpu_seconds() {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

azops::FileFeedOptions fast_polling() {
    azops::FileFeedOptions o;
    o.poll_interval = 10ms;
    return o;
}

azops::ServerOptions any_port() {
    azops::ServerOptions o;
    o.port = 0;
    return o;
}

}  // namespace

// =====================================================================================================
TEST_SUITE("faults: killed writers") {

TEST_CASE("a busy status writer killed with SIGKILL 200 times leaves a whole status, and its restart cleans up") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    const std::string status_temp = "." + kStatusName + ".tmp.";
    FolderWatch watch(dir.path());
    std::mt19937 random(kSeed);
    std::set<std::string> left_behind;  // temporary files killed writers left, until a restart is seen
    std::set<std::string> reported;     // those a restart did not remove, each reported once
    int rounds_leaving_temp = 0;
    int restarts_checked = 0;
    bool file_seen = false;

    for (int round = 0; round < 200; ++round) {
        CAPTURE(round);
        HelperProcess writer({AZOPS_FAULT_WRITER, "status", path.string()});
        // Five kinds of moment, in turn: right after the start (often before exec is done); during
        // startup (construction, the token, the first write); anywhere in steady writing; just after
        // a temporary file appeared (mid-write); just after a rename (the file was replaced).
        const int kind = round % 5;
        if (kind == 1) pause_for(std::chrono::microseconds(random() % 4000));
        if (kind >= 2) {
            const auto ready = writer.next_line(10s);
            REQUIRE_MESSAGE(ready == std::optional<std::string>("ready"), "the writer did not start within 10 s");
            std::vector<std::string> lingering;
            for (const auto& name : left_behind) {
                if (fs::exists(dir / name) && reported.insert(name).second) lingering.push_back(name);
            }
            CHECK_MESSAGE(lingering.empty(), "a restarted writer left what a killed one wrote: " << joined(lingering));
            left_behind.clear();
            ++restarts_checked;
            watch.forget();
            if (kind == 2) pause_for(std::chrono::microseconds(random() % 20000));
            if (kind == 3) CHECK(watch.wait_for(IN_CREATE, status_temp, false, 5000ms));
            if (kind == 4) CHECK(watch.wait_for(IN_MOVED_TO, kStatusName, true, 5000ms));
        }
        writer.kill_and_reap();

        if (fs::exists(path)) {
            file_seen = true;
            const std::string text = read_file(path);
            const auto parsed = azops::parse_status(text);
            CHECK_MESSAGE(parsed.status.has_value(), "unparsable status (" << parsed.error << "): " << text.substr(0, 300));
        } else {
            CHECK_MESSAGE(!file_seen, "the status file disappeared");
        }
        bool new_temp = false;
        for (const auto& name : temp_files_in(dir.path())) {
            new_temp = (left_behind.insert(name).second && reported.count(name) == 0) || new_temp;
        }
        rounds_leaving_temp += new_temp ? 1 : 0;
    }
    CHECK(file_seen);
    MESSAGE(rounds_leaving_temp << " of 200 kills left a temporary file; " << restarts_checked
                                << " restarts were checked for leftovers");

    // Every kind of leftover a killed Tracker (status, token) or a killed `azops serve` asking for a
    // stop (cancel) can leave, planted where it would be: kills rarely land inside such short writes.
    azops_test::write_file(dir / (status_temp + "Qx7Ab2"), status_document(3).substr(0, 700));
    azops_test::write_file(dir / ("." + kStatusName + ".token.tmp.Rt5Kp0"), "3f9c0a");
    azops_test::write_file(dir / ("." + kStatusName + ".cancel.tmp.Vn3Hs8"), "3f9c0a7d");
    HelperProcess last({AZOPS_FAULT_WRITER, "status", path.string()});
    REQUIRE(last.next_line(10s) == std::optional<std::string>("ready"));
    const auto stopped = last.terminate(10s);  // a clean stop: the task ends cancelled, the token file goes
    REQUIRE_MESSAGE(stopped, "the writer did not stop within 10 s of SIGTERM");
    CHECK(WIFEXITED(*stopped));
    CHECK(WEXITSTATUS(*stopped) == 0);
    const auto remaining = names_in(dir.path());
    CHECK_MESSAGE(remaining == std::vector<std::string>{kStatusName},
                  "after a restart and a clean stop the folder holds: " << joined(remaining));
    const auto final_status = azops::parse_status(read_file(path));
    REQUIRE(final_status.status);
    CHECK(final_status.status->state == "cancelled");
}

TEST_CASE("history updates killed with SIGKILL 100 times: the file parses, keeps every reported run, the lock frees") {
    ScratchDir dir;
    const fs::path path = dir / "azure_ops_history.json";
    const fs::path lock_file = dir / "azure_ops_history.json.lock";
    const std::string history_temp = ".azure_ops_history.json.tmp.";
    FolderWatch watch(dir.path());
    std::mt19937 random(kSeed + 1);
    long runs_in_file = 0;
    int reports_lost = 0;

    for (int round = 0; round < 100; ++round) {
        CAPTURE(round);
        HelperProcess child({AZOPS_FAULT_WRITER, "history", path.string(), std::to_string(runs_in_file)});
        std::vector<std::string> reported;
        // Right after the start, during the first update, after a few whole updates, or just after
        // a temporary file appeared (the lock held, the update half done).
        const int kind = round % 4;
        if (kind == 1) pause_for(std::chrono::microseconds(random() % 15000));
        if (kind == 2) {
            const auto wanted = 1 + random() % 3;
            while (reported.size() < wanted) {
                auto line = child.next_line(10s);
                REQUIRE_MESSAGE(line, "the history writer reported nothing for 10 s (a stuck lock?)");
                reported.push_back(std::move(*line));
            }
            pause_for(std::chrono::microseconds(random() % 12000));
        }
        if (kind == 3) {
            auto line = child.next_line(10s);
            REQUIRE_MESSAGE(line, "the history writer reported nothing for 10 s (a stuck lock?)");
            reported.push_back(std::move(*line));
            watch.forget();
            CHECK(watch.wait_for(IN_CREATE, history_temp, false, 5000ms));
        }
        child.kill_and_reap();
        for (auto& line : child.remaining_lines()) reported.push_back(std::move(line));

        // The child numbered its runs from runs_in_file on and said each one the moment it returned.
        for (std::size_t i = 0; i < reported.size(); ++i) {
            REQUIRE(reported[i] == std::to_string(runs_in_file + static_cast<long>(i)));
        }
        const long confirmed = runs_in_file + static_cast<long>(reported.size());
        CHECK_MESSAGE(lock_is_free(lock_file), "the lock stayed held after its holder was killed");

        long samples = 0;
        if (fs::exists(path)) {
            const auto history = azops::History::load(path);
            CHECK_MESSAGE(!history.corrupt(), "unparsable history: " << read_file(path).substr(0, 300));
            CHECK_MESSAGE(history.warnings().empty(), joined(history.warnings()));
            const auto op = history.operation("docker_build");
            REQUIRE(op);
            samples = op->samples;
            // Runs n = 0 .. samples-1, each n + 0.25 s then 1.5 s: the recent lists hold the last ones.
            const auto total_of = [](long n) { return static_cast<double>(n) + 1.75; };
            const std::size_t recent = std::min<std::size_t>(static_cast<std::size_t>(samples), azops::History::max_recent_seconds);
            REQUIRE(op->recent_seconds.size() == recent);
            for (std::size_t i = 0; i < recent; ++i) {
                CHECK(op->recent_seconds[i] == total_of(samples - static_cast<long>(recent - i)));
            }
            const std::size_t runs = std::min<std::size_t>(static_cast<std::size_t>(samples), azops::History::max_recent_runs);
            REQUIRE(op->recent_runs.size() == runs);
            CHECK(op->recent_runs.back().step_seconds.front() == static_cast<double>(samples - 1) + 0.25);
            CHECK(op->recent_runs.back().cached_steps == std::vector<int>{2});
            REQUIRE(op->avg_seconds);
            CHECK(*op->avg_seconds == doctest::Approx(static_cast<double>(samples - 1) / 2 + 1.75).epsilon(1e-9));
        }
        // Every run reported is in the file; at most one more, whose report the kill cut off.
        CHECK(samples >= confirmed);
        CHECK(samples <= confirmed + 1);
        reports_lost += samples == confirmed + 1 ? 1 : 0;
        runs_in_file = samples;
        for (const auto& name : names_in(dir.path())) CHECK_MESSAGE(!contains(name, ".corrupt-"), name);
    }
    CHECK(runs_in_file >= 50);  // at least one reported run in each round of kinds 2 and 3
    MESSAGE(runs_in_file << " runs recorded; in " << reports_lost << " rounds the kill came between the rename and the report");

    // The next writer gets the lock at once and removes what the killed ones left.
    const auto result = azops::History::record_to_file(path, "docker_build", {9.0, 1.0});
    CHECK(result.ok);
    CHECK(temp_files_in(dir.path()).empty());
    CHECK(azops::History::load(path).operation("docker_build")->samples == runs_in_file + 1);
}

}  // TEST_SUITE("faults: killed writers")

// =====================================================================================================
TEST_SUITE("faults: full disk and mounts") {

TEST_CASE("a full disk: status and history writes fail clearly, keep the old files, leave nothing, then resume") {
    ScratchDir dir;
    const fs::path mount_point = dir / "small";
    fs::create_directory(mount_point);
    const auto run = run_in_private_mounts([&](Findings& f) {
        if (::mount("tmpfs", mount_point.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, "size=256k,mode=0700") != 0) {
            f.skip(std::string("mount tmpfs: ") + std::strerror(errno));
            return;
        }
        const fs::path folder = mount_point / "benchmark_results";
        const fs::path status = folder / kStatusName;
        const fs::path history = folder / "azure_ops_history.json";
        const fs::path filler = mount_point / "filler";
        std::string why;
        const auto no_temp_files = [&](const char* when) {
            // A write in flight holds a temporary file for microseconds; one left behind stays.
            const bool none = azops_test::eventually([&] { return temp_files_in(folder).empty(); }, 1000ms);
            f.check(none, std::string(when) + ": temporary files left: " + joined(temp_files_in(folder)));
        };

        const auto first = azops::History::record_to_file(history, "docker_build", {41.3, 615.7, 312.8});
        f.check(first.ok, "the first history record failed: " + first.error);
        azops::TrackerOptions options;
        options.status_file = status;
        options.history_file = history;
        options.heartbeat = std::chrono::hours(1);  // only the writes this test asks for
        azops::Tracker tracker(options);
        tracker.begin("setup-waa");
        tracker.operation("docker_build", 21);
        tracker.log("#5 [1/21] FROM docker.io/library/python:3.10-slim@sha256:4f7e0e3b");
        tracker.flush();
        const std::string status_before = read_file(status);
        f.check(azops::parse_status(status_before).status.has_value(), "no valid status before the disk filled");

        // The status file on a full disk.
        f.check(fill_disk(filler, why), "cannot fill the disk: " + why);
        const auto stats_before = tracker.writer_stats();
        tracker.log("#5 0.713 Collecting numpy==1.26.4");
        tracker.flush();
        const auto stats = tracker.writer_stats();
        f.check(stats.failures > stats_before.failures, "a write on a full disk was not counted as failed");
        f.check(contains(stats.last_error, "No space left on device") && contains(stats.last_error, folder.string()),
                "the writer's error does not say the disk is full, and where: " + stats.last_error);
        const auto notice = tracker.snapshot().notice;
        f.check(notice && contains(*notice, "No space left on device"),
                "the status's notice does not say the disk is full: " + notice.value_or("(none)"));
        tracker.flush();  // the next attempt (the heartbeat's, at the latest) renders the notice for viewers
        const auto published = nlohmann::json::parse(tracker.published().json, nullptr, false);
        f.check(published.is_object() && published.value("notice", nlohmann::json()).is_string() &&
                    contains(published["notice"].get<std::string>(), "No space left on device"),
                "a server in this process does not show the full disk: " + tracker.published().json.substr(0, 300));
        f.check(read_file(status) == status_before, "the status file changed although its write failed");
        no_temp_files("after failed status writes");

        // Space again: writing resumes, and the notice soon stops reporting a failure that is over.
        ::unlink(filler.c_str());
        tracker.log("#5 DONE 41.2s");
        tracker.flush();
        const auto resumed = azops::parse_status(read_file(status));
        f.check(resumed.status && !resumed.status->log_tail.empty() && resumed.status->log_tail.back() == "#5 DONE 41.2s",
                "the status did not resume after space was freed");
        f.check(tracker.writer_stats().writes > stats.writes, "no successful write after space was freed");
        const auto file_notice = [&] {
            const auto now = azops::parse_status(read_file(status));
            return now.status ? now.status->notice.value_or("") : std::string("(unparsable)");
        };
        f.check(azops_test::eventually([&] { return !contains(file_notice(), "No space left"); }, 3000ms),
                "3 s after writing resumed the status still says: " + file_notice());

        // The history file on a full disk: directly, and through the tracker ending an operation.
        const std::string history_before = read_file(history);
        f.check(fill_disk(filler, why), "cannot fill the disk again: " + why);
        const auto full = azops::History::record_to_file(history, "docker_build", {40.8, 598.2, 330.4});
        f.check(!full.ok, "record_to_file reported success on a full disk");
        f.check(contains(full.error, "No space left on device"), "record_to_file's error does not say why: " + full.error);
        f.check(read_file(history) == history_before, "the history file changed although its update failed");
        f.check(lock_is_free(history.string() + ".lock"), "the history lock stayed held after a failed update");
        tracker.operation("windows_boot", 8);  // ends docker_build, which records into the history file
        tracker.flush();
        f.check(read_file(history) == history_before, "the history file changed although the tracker's update failed");
        for (const auto& name : names_in(folder)) f.check(!contains(name, ".corrupt-"), "a history file was moved aside: " + name);
        no_temp_files("after failed history updates");

        // Once the status can be written again it says what was lost: the history of docker_build.
        ::unlink(filler.c_str());
        tracker.flush();
        f.check(azops_test::eventually(
                    [&] { return contains(file_notice(), "history not updated") && contains(file_notice(), "No space left"); },
                    3000ms),
                "the status does not say the history could not be updated: " + file_notice());
        const auto again = azops::History::record_to_file(history, "docker_build", {40.8, 598.2, 330.4});
        f.check(again.ok, "record_to_file failed after space was freed: " + again.error);
        const auto op = azops::History::load(history).operation("docker_build");
        f.check(op && op->samples == 2, "the history does not hold the first run and the one after the disk was freed");
        tracker.succeed();
        no_temp_files("at the end");
    });
    report(run, "the full-disk test");
}

TEST_CASE("a status file bind-mounted over a single file (EBUSY on rename) is rewritten in place, valid, and said so") {
    ScratchDir dir;
    const fs::path folder = dir / "benchmark_results";
    fs::create_directory(folder);
    const fs::path status = folder / kStatusName;
    const fs::path host_file = dir / "host_status.json";
    azops_test::write_file(status, "");
    azops_test::write_file(host_file, "{}");
    const auto run = run_in_private_mounts([&](Findings& f) {
        // As `docker run -v $PWD/host_status.json:/results/azure_ops_status.json` does.
        if (::mount(host_file.c_str(), status.c_str(), nullptr, MS_BIND, nullptr) != 0) {
            f.skip(std::string("bind mount: ") + std::strerror(errno));
            return;
        }
        {
            azops::TrackerOptions options;
            options.status_file = status;
            options.heartbeat = std::chrono::hours(1);
            azops::Tracker tracker(options);
            tracker.begin("setup-waa");
            tracker.operation("windows_boot", 8);
            tracker.log("Booting Windows using QEMU v8.2.2...");
            tracker.flush();
            const auto stats = tracker.writer_stats();
            f.check(stats.fallbacks >= 1 && stats.failures == 0,
                    "expected in-place writes and no failure; fallbacks " + std::to_string(stats.fallbacks) +
                        ", failures " + std::to_string(stats.failures) + ": " + stats.last_error);
            const auto notice = tracker.snapshot().notice;
            f.check(notice && contains(*notice, "Device or resource busy") && contains(*notice, "rewrote it in place"),
                    "the notice does not explain the in-place fallback: " + notice.value_or("(none)"));
            const auto seen_by_host = azops::parse_status(read_file(host_file));
            f.check(seen_by_host.status && seen_by_host.status->log_tail.back() == "Booting Windows using QEMU v8.2.2...",
                    "the bind-mounted file does not hold the status: " + read_file(host_file).substr(0, 200));
        }
        // Once the tracker is gone: while it lives, its writer's thread may be half-way through one
        // more write (the notice it just took), whose temporary file is not yet renamed or removed.
        const auto temps = temp_files_in(folder);
        f.check(temps.empty(), "temporary files left: " + joined(temps));
    });
    report(run, "the bind-mount test");
}

}  // TEST_SUITE("faults: full disk and mounts")

// =====================================================================================================
TEST_SUITE("faults: the served file") {

namespace {

// Asks for /healthz, the status and /metrics over and over, and notes every answer that is wrong.
class Prober {
public:
    Prober(int port, std::string status_file) : port_(port), status_file_(std::move(status_file)) {
        thread_ = std::thread([this] { loop(); });
    }
    ~Prober() { stop(); }
    Prober(const Prober&) = delete;
    Prober& operator=(const Prober&) = delete;

    void stop() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            stopping_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    std::vector<std::string> problems() {
        std::lock_guard<std::mutex> lock(mutex_);
        return problems_;
    }
    int requests() const noexcept { return requests_.load(); }

private:
    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!stopping_) {
            lock.unlock();
            for (const char* path : {"/healthz", "/api/azure-ops-status", "/metrics"}) {
                if (auto problem = probe(path)) {
                    std::lock_guard<std::mutex> guard(mutex_);
                    if (problems_.size() < 20) problems_.push_back(std::string(path) + ": " + *problem);
                }
                ++requests_;
            }
            lock.lock();
            cv_.wait_for(lock, 2ms, [this] { return stopping_; });
        }
    }

    std::optional<std::string> probe(const char* path) {
        const auto r = http_get(port_, path);
        if (!r) return std::string("no complete answer");
        const std::string p = path;
        if (p == "/healthz") {
            if (r->status != 200 || r->body != "ok") return "answered " + std::to_string(r->status) + " " + r->body;
        } else if (p == "/metrics") {
            if (r->status != 200 || !contains(r->body, "\nazops_status_available ")) {
                return "answered " + std::to_string(r->status);
            }
        } else if (r->status == 503) {
            const auto body = nlohmann::json::parse(r->body, nullptr, false);
            if (!body.is_object() || !body.value("error", nlohmann::json()).is_string() ||
                body.value("status_file", std::string()) != status_file_) {
                return "a 503 without the reason and the file: " + r->body.substr(0, 200);
            }
        } else if (r->status != 200 || !nlohmann::json::parse(r->body, nullptr, false).is_object()) {
            return "answered " + std::to_string(r->status) + " " + r->body.substr(0, 200);
        }
        return std::nullopt;
    }

    const int port_;
    const std::string status_file_;
    std::mutex mutex_;
    std::condition_variable cv_;
    bool stopping_ = false;
    std::vector<std::string> problems_;
    std::atomic<int> requests_{0};
    std::thread thread_;
};

}  // namespace

TEST_CASE("the server keeps serving while its status file goes missing, is cut, turns to garbage, then comes back") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    const std::string fixture = read_file(kData + "/faults/azure_ops_status.json");
    REQUIRE(azops::parse_status(fixture).status);
    REQUIRE(azops::write_file_atomically(path, fixture).ok);
    auto feed = std::make_shared<azops::FileFeed>(path, fast_polling());
    azops::StatusServer server(feed, any_port());
    const int port = server.start();
    const std::string status_file = feed->status_file();
    Prober prober(port, status_file);
    SseStream sse(port);
    REQUIRE(sse.next(5000ms));
    CHECK(sse.status() == 200);
    std::mt19937 random(kSeed + 2);
    int step = 0;

    const auto metric_available = [&](int value) {
        const auto r = http_get(port, "/metrics");
        return r && r->status == 200 && contains(r->body, "\nazops_status_available " + std::to_string(value) + "\n");
    };
    // One fault: it must be reported everywhere, then the file becomes valid and is served again.
    const auto survive = [&](const std::string& what, const std::function<void()>& apply, const std::string& reason,
                             const std::function<void()>& undo = {}) {
        CAPTURE(what);
        apply();
        const auto gone = sse.next_where(
            [&](const SseItem& e) {
                const auto body = nlohmann::json::parse(e.data, nullptr, false);
                return e.event == "unavailable" && body.is_object() &&
                       starts_with(body.value("error", std::string()), reason);
            },
            5000ms);
        REQUIRE_MESSAGE(gone, "no 'unavailable' event saying \"" << reason << "\"");
        CHECK(nlohmann::json::parse(gone->data)["status_file"] == status_file);
        // The reason is the server's own words, never the file's bytes: short, whatever the file holds.
        CHECK_MESSAGE(gone->data.size() <= 600, "an 'unavailable' event of " << gone->data.size() << " bytes");
        const auto answer = http_get(port, "/api/azure-ops-status");
        REQUIRE(answer);
        CHECK(answer->status == 503);
        const auto body = nlohmann::json::parse(answer->body, nullptr, false);  // strict: valid UTF-8 only
        REQUIRE_MESSAGE(body.is_object(), answer->body.substr(0, 300));
        CHECK(starts_with(body.value("error", std::string()), reason));
        CHECK(body["status_file"] == status_file);
        CHECK(metric_available(0));

        if (undo) undo();
        const std::string valid = status_document(++step);
        REQUIRE(azops::write_file_atomically(path, valid).ok);
        const auto back = sse.next_where([&](const SseItem& e) { return e.event == "status" && e.data == valid; }, 5000ms);
        CHECK_MESSAGE(back, "the status did not come back on the event stream");
        const auto served = http_get(port, "/api/azure-ops-status");
        REQUIRE(served);
        CHECK(served->status == 200);
        CHECK(served->body == valid);
        CHECK(metric_available(1));
    };
    const auto replace_with = [&](std::string content) {
        return [&path, content = std::move(content)] { REQUIRE(azops::write_file_atomically(path, content).ok); };
    };

    survive("missing", [&] { fs::remove(path); }, "the status file does not exist yet");
    // Cut in place at random points, as a writer that does not rename would leave it.
    std::vector<std::size_t> cuts = {0, 1};
    for (int i = 0; i < 10; ++i) cuts.push_back(1 + random() % (status_document(step + 1).size() - 2));
    for (const std::size_t cut : cuts) {
        survive("truncated to " + std::to_string(cut) + " bytes", [&] { REQUIRE(::truncate(path.c_str(), static_cast<off_t>(cut)) == 0); },
                cut == 0 ? "the status file is empty" : "the status file is not valid JSON: parse error");
    }
    std::string binary(4096, '\0');
    for (char& c : binary) c = static_cast<char>(random() % 256);
    binary[0] = '\x7f';  // an ELF header's first bytes
    survive("binary", replace_with(binary), "the status file is not valid JSON: parse error");
    survive("half a document", replace_with(fixture.substr(0, fixture.size() / 2)), "the status file is not valid JSON: parse error");
    survive("invalid UTF-8 in a string", replace_with("{\"task\":\"setup-waa \xff\xfe\xc3\",\"state\":\"running\"}"),
            "the status file is not valid JSON: parse error");
    survive("a JSON array", replace_with("[" + fixture + "]"), "the status file does not hold a JSON object");
    survive("null", replace_with("null"), "the status file does not hold a JSON object");
    survive("whitespace", replace_with(" \n\t\r\n"), "the status file is empty");
    survive("10 MB that never closes its string", replace_with("{\"log_tail\":[\"" + std::string(10u << 20, 'x')),
            "the status file is not valid JSON: parse error");
    survive("17 MiB, over the limit", replace_with("{\"log_tail\":[\"" + std::string(17u << 20, 'x') + "\"]}"),
            "the status file is larger than 16777216 bytes");
    survive("a folder in its place", [&] { fs::remove(path); fs::create_directory(path); },
            "cannot read the status file: Is a directory", [&] { fs::remove(path); });
    survive("missing again", [&] { fs::remove(path); }, "the status file does not exist yet");

    prober.stop();
    const auto problems = prober.problems();
    CHECK_MESSAGE(problems.empty(), "wrong answers while the file was broken: " << joined(problems));
    CHECK(prober.requests() >= 30);
    const auto health = http_get(port, "/healthz");
    CHECK((health && health->status == 200));
}

}  // TEST_SUITE("faults: the served file")

// =====================================================================================================
// Rows of the reliability test table (reliability_anchors.md §8) no other test covers in full.
TEST_SUITE("faults: table rows") {

namespace {

// Calls of json::dump that do not pass error_handler_t::replace (they throw on invalid UTF-8), and
// JSON or setw streamed with operator<< (which throws after writing half a document).
std::vector<std::string> strict_json_output(const std::string& text, const std::string& file) {
    std::string source;  // without // comments, which may well quote a strict call
    for (std::size_t at = 0; at < text.size();) {
        const auto comment = text.find("//", at);
        source += text.substr(at, comment - at);
        if (comment == std::string::npos) break;
        at = text.find('\n', comment);
    }
    std::vector<std::string> found;
    for (auto at = source.find(".dump("); at != std::string::npos; at = source.find(".dump(", at + 1)) {
        std::size_t end = at + 5;
        for (int depth = 0; end < source.size(); ++end) {
            if (source[end] == '(') ++depth;
            if (source[end] == ')' && --depth == 0) break;
        }
        const std::string call = source.substr(at, end - at + 1);
        if (!contains(call, "error_handler_t::replace")) found.push_back(file + ": " + call);
    }
    for (auto at = source.find("<<"); at != std::string::npos; at = source.find("<<", at + 2)) {
        const auto next = source.find_first_not_of(" \t\r\n", at + 2);
        if (next == std::string::npos) break;
        const std::string_view rest = std::string_view(source).substr(next, 32);
        if (starts_with(rest, "nlohmann::json") || starts_with(rest, "nlohmann::ordered_json") ||
            starts_with(rest, "std::setw(")) {
            found.push_back(file + ": <<" + std::string(rest));
        }
    }
    return found;
}

}  // namespace

TEST_CASE("row 1, status_atomic_concurrent_readers: 4 reader threads and a reader process, documents of 1 to 140 KB") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    std::vector<std::string> documents;
    for (const std::size_t lines : {4, 60, 250, 500, 700}) documents.push_back(status_document(7, lines, 200));
    REQUIRE(documents.front().size() < 2000);
    REQUIRE(documents.back().size() > 140000);
    REQUIRE(azops::write_file_atomically(path, documents.front()).ok);
    const auto whole = [](const std::string& text) { return !text.empty() && nlohmann::json::accept(text); };
    constexpr int reads_each = 2000;

    const pid_t reader_process = ::fork();
    REQUIRE(reader_process >= 0);
    if (reader_process == 0) {
        int failures = 0;
        for (int i = 0; i < reads_each; ++i) failures += whole(read_file(path)) ? 0 : 1;
        ::_exit(std::min(failures, 250));
    }
    std::atomic<int> failures{0};
    std::atomic<int> readers_done{0};
    std::vector<std::thread> readers;
    for (int t = 0; t < 4; ++t) {
        readers.emplace_back([&] {
            for (int i = 0; i < reads_each; ++i) failures += whole(read_file(path)) ? 0 : 1;
            ++readers_done;
        });
    }
    const auto start = SteadyClock::now();
    int writes = 0;
    int wstatus = 0;
    bool process_done = false;
    while (readers_done.load() < 4 || !process_done) {
        REQUIRE(azops::write_file_atomically(path, documents[static_cast<std::size_t>(writes) % documents.size()]).ok);
        ++writes;
        if (!process_done) process_done = ::waitpid(reader_process, &wstatus, WNOHANG) == reader_process;
    }
    const double seconds = std::chrono::duration<double>(SteadyClock::now() - start).count();
    for (auto& r : readers) r.join();
    CHECK(failures.load() == 0);
    CHECK(WIFEXITED(wstatus));
    CHECK(WEXITSTATUS(wstatus) == 0);
    CHECK(writes >= 100);  // the reads really overlapped the writes
    MESSAGE((5 * reads_each) << " reads and " << writes << " writes in " << seconds << " s ("
                           << static_cast<int>(writes / seconds) << " writes/s on this machine)");
}

TEST_CASE("row 4, status_file_mode_and_name: temporary names never look like the status file, modes are 0644 and 0600") {
    ScratchDir dir;
    FolderWatch watch(dir.path());
    azops::TrackerOptions options;
    options.status_file = dir / kStatusName;
    options.min_write_interval = 0ms;
    {
        azops::Tracker tracker(options);
        tracker.begin("setup-waa");
        tracker.operation("docker_build", 21);
        for (int i = 0; i < 200; ++i) {
            tracker.log("#7 " + std::to_string(i) + ".2 Collecting package-" + std::to_string(i));
            tracker.flush();
        }
        struct stat st {};
        REQUIRE(::stat(options.status_file.c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0644);
        REQUIRE(::stat((options.status_file.string() + ".token").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
    }
    int temporary = 0;
    for (const auto& name : watch.names()) {
        if (name == kStatusName || name == kStatusName + ".token") continue;
        ++temporary;
        CHECK_MESSAGE((starts_with(name, "." + kStatusName + ".tmp.") || starts_with(name, "." + kStatusName + ".token.tmp.")), name);
        // What a reader might look for: the name itself, *.json, azure_ops_status*, as a shell globs.
        for (const char* glob : {"*.json", "azure_ops_status*", "*azure_ops_status.json"}) {
            CHECK_MESSAGE(::fnmatch(glob, name.c_str(), FNM_PERIOD) != 0, name << " matches " << glob);
        }
    }
    CHECK(temporary >= 200);
}

TEST_CASE("row 7, json_no_strict_dump: the library and the programs never dump JSON that could throw on bad UTF-8") {
    CHECK(strict_json_output("out << j.dump(2) << '\\n';", "sample").size() == 1);
    CHECK(strict_json_output("std::cout << std::setw(4) << j;", "sample").size() == 1);
    CHECK(strict_json_output("log << nlohmann::json{{\"a\", 1}};", "sample").size() == 1);
    CHECK(strict_json_output("j.dump(-1, ' ', false,\n    nlohmann::json::error_handler_t::replace)", "sample").empty());
    CHECK(strict_json_output("// the original tool's json.dump(status, f)\nx = 1;", "sample").empty());

    const fs::path root = fs::path(kData).parent_path().parent_path();
    std::vector<std::string> found;
    int scanned = 0;
    for (const char* part : {"include", "examples", "bench"}) {
        std::error_code ec;
        for (fs::recursive_directory_iterator it(root / part, ec), end; !ec && it != end; it.increment(ec)) {
            const auto ext = it->path().extension();
            if (ext != ".hpp" && ext != ".cpp" && ext != ".h") continue;
            ++scanned;
            for (auto& f : strict_json_output(read_file(it->path()), it->path().lexically_relative(root).string())) {
                found.push_back(std::move(f));
            }
        }
    }
    CHECK(scanned >= 20);
    CHECK_MESSAGE(found.empty(), joined(found));
}

TEST_CASE("row 9, history_truncated_tail: a history cut at 100 points reads as empty with a warning and is kept aside whole") {
    // The history is one JSON document replaced by rename, so azops itself never leaves a cut file;
    // one cut by something else holds no record that can be trusted, and must never be lost either.
    const std::string whole = read_file(kData + "/faults/azure_ops_history.json");
    const auto intact = azops::History::parse(whole);
    REQUIRE_FALSE(intact.corrupt());
    REQUIRE(intact.operation("docker_build")->samples == 7);
    std::mt19937 random(kSeed + 3);
    ScratchDir dir;
    for (int i = 0; i < 100; ++i) {
        const std::size_t cut = i == 0 ? 0 : 1 + random() % (whole.size() - 1);
        CAPTURE(cut);
        const std::string part = whole.substr(0, cut);
        const auto history = azops::History::parse(part, "azure_ops_history.json");
        CHECK(history.empty());
        CHECK(history.corrupt() == (cut > 0));
        REQUIRE(history.warnings().size() == 1);
        CHECK(contains(history.warnings().front(), "azure_ops_history.json"));
        if (i % 10 != 0) continue;
        const fs::path path = dir / std::to_string(i) / "azure_ops_history.json";
        fs::create_directories(path.parent_path());
        azops_test::write_file(path, part);
        const auto result = azops::History::record_to_file(path, "docker_build", {40.8, 598.2});
        REQUIRE(result.ok);
        CHECK(result.moved_aside.has_value() == (cut > 0));
        if (result.moved_aside) CHECK(read_file(*result.moved_aside) == part);
        CHECK(azops::History::load(path).operation("docker_build")->samples == 1);
    }
}

TEST_CASE("row 11, history_durability_calls: a history save fsyncs the file before the rename and the folder after, status writes never") {
    ScratchDir dir;
    const fs::path history = dir / "azure_ops_history.json";
    const std::string temp = (dir / ".azure_ops_history.json.tmp.").string();
    fs_shim::start();
    const auto result = azops::History::record_to_file(history, "vm_create", {148.2});
    auto events = fs_shim::stop();
    REQUIRE(result.ok);
    REQUIRE_MESSAGE(events.size() == 3, joined(events));
    CHECK(starts_with(events[0], "fsync file " + temp));
    CHECK(starts_with(events[1], "rename " + temp));
    CHECK(contains(events[1], " -> " + history.string()));
    CHECK(events[2] == "fsync folder " + dir.path().string());

    fs_shim::start();
    for (int i = 0; i < 5; ++i) REQUIRE(azops::write_file_atomically(dir / kStatusName, status_document(i)).ok);
    {
        azops::TrackerOptions options;
        options.status_file = dir / "tracker" / kStatusName;
        azops::Tracker tracker(options);
        tracker.begin("setup-waa");
        tracker.log("#1 [internal] load build definition from Dockerfile");
        tracker.flush();
        tracker.succeed();
    }
    events = fs_shim::stop();
    const auto fsyncs = std::count_if(events.begin(), events.end(), [](const std::string& e) { return starts_with(e, "fsync"); });
    const auto renames = std::count_if(events.begin(), events.end(), [](const std::string& e) { return starts_with(e, "rename"); });
    CHECK_MESSAGE(fsyncs == 0, joined(events));
    CHECK(renames >= 8);  // the shim did see the status writes
}

TEST_CASE("row 27, sse_disconnect_cleanup: 50 streams closed or reset give back their slots, descriptors and the CPU") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    REQUIRE(azops::write_file_atomically(path, read_file(kData + "/faults/azure_ops_status.json")).ok);
    azops::ServerOptions options = any_port();
    options.stream_heartbeat = 100ms;
    azops::StatusServer server(std::make_shared<azops::FileFeed>(path), options);
    const int port = server.start();
    REQUIRE(http_get(port, "/healthz"));
    const std::size_t baseline = open_fd_count();
    for (int i = 0; i < 50; ++i) {
        SseStream stream(port);
        REQUIRE(stream.next(5000ms));
        stream.close(/*reset=*/i % 2 == 1);
    }
    CHECK(azops_test::eventually([&] { return server.live_streams() == 0; }, 500ms));
    CHECK(azops_test::eventually([&] { return open_fd_count() <= baseline + 2; }, 1000ms));
    const double cpu_before = process_cpu_seconds();
    pause_for(500ms);  // a measuring window: a worker spinning on a dead stream would burn it all
    const double cpu = process_cpu_seconds() - cpu_before;
    CHECK_MESSAGE(cpu < 0.025, "the idle server used " << cpu << " s of CPU in 0.5 s");
    CHECK(http_get(port, "/healthz")->status == 200);
}

TEST_CASE("row 32, http_request_fuzz: 2,000 mutated requests never crash the server, get a 5xx, or pass the Host check") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    REQUIRE(azops::write_file_atomically(path, read_file(kData + "/faults/azure_ops_status.json")).ok);
    azops::ServerOptions options = any_port();
    options.keep_alive_timeout = 100ms;  // requests cut short or kept alive end quickly
    options.read_timeout = 100ms;
    options.request_timeout = 150ms;
    azops::StatusServer server(std::make_shared<azops::FileFeed>(path), options);
    const int port = server.start();
    const std::string p = std::to_string(port);
    const std::vector<std::string> templates = {
        "GET / HTTP/1.1\r\nHost: {H}\r\nAccept: text/html\r\nConnection: close\r\n\r\n",
        "GET /api/azure-ops-status HTTP/1.1\r\nHost: {H}\r\nAccept-Encoding: gzip, br\r\nConnection: close\r\n\r\n",
        "GET /metrics HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n",
        "GET /healthz HTTP/1.1\r\nHost: {H}\r\nConnection: close\r\n\r\n",
        "POST /api/azure-ops/cancel HTTP/1.1\r\nHost: {H}\r\nOrigin: http://{H}\r\nX-Azops-Token: "
        "0123456789abcdef0123456789abcdef0123456789abcdef\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        "HEAD /azure_ops.html?x=1 HTTP/1.1\r\nHost: {H}\r\nRange: bytes=0-10,20-30\r\nConnection: close\r\n\r\n",
    };
    const std::vector<std::string> good_hosts = {"127.0.0.1:" + p, "localhost:" + p, "[::1]:" + p};
    const std::vector<std::string> evil_hosts = {"evil.example:" + p, "attacker.example", "127.0.0.2:" + p, "0x7f000001:" + p,
                                                 "2130706433:" + p,   "[::2]:" + p,        "dashboard.internal:" + p, ""};
    const std::vector<std::string> inserts = {"\r", "\n", std::string(1, '\0'), "%00", "%0d%0a", " ", ":", "\x80", "\xff",
                                              "/../", "?", "\r\nHost: evil.example\r\n", "\r\nTransfer-Encoding: chunked\r\n",
                                              "\r\nContent-Length: 99999999999999999999\r\n", std::string(9000, 'A')};
    const std::vector<std::string> methods = {"GET", "POST", "PUT", "DELETE", "OPTIONS", "TRACE", "CONNECT", "PATCH", "BREW", "G\x01T"};
    std::mutex mutex;
    std::vector<std::string> problems;
    std::atomic<int> answered{0};
    std::atomic<int> evil_sent{0};
    const auto client = [&](int id) {
        std::mt19937 random(kSeed + 10 + static_cast<std::uint32_t>(id));
        const auto pick = [&](const auto& list) { return list[random() % list.size()]; };
        for (int i = 0; i < 250; ++i) {
            const bool evil = random() % 2 == 0;
            std::string request = pick(templates);
            const std::string host = evil ? pick(evil_hosts) : pick(good_hosts);
            for (auto at = request.find("{H}"); at != std::string::npos; at = request.find("{H}")) request.replace(at, 3, host);
            for (auto n = random() % 3; n > 0; --n) {
                const std::size_t at = random() % request.size();
                switch (random() % 6) {
                    case 0: request[at] = static_cast<char>(random() % 256); break;
                    case 1: request.insert(at, pick(inserts)); break;
                    case 2: request.erase(at, random() % 12); break;
                    case 3: request.replace(0, request.find(' '), pick(methods)); break;
                    case 4: request.insert(request.find("\r\n") + 2, "X-Fill: " + std::string(random() % 12000, 'b') + "\r\n"); break;
                    default: if (random() % 8 == 0) request.resize(at); break;  // cut short: the server waits, then gives up
                }
            }
            // After the mutations, only a request that names no allowed host in any spelling counts as foreign.
            const std::string lowered = lower(request);
            const bool foreign = evil && !contains(lowered, "127.0.0.1") && !contains(lowered, "localhost") &&
                                 !contains(lowered, "::1") && !contains(lowered, "%");
            evil_sent += foreign ? 1 : 0;
            const auto raw = http_exchange(port, request, 3000ms);
            std::string problem;
            if (!raw) {
                problem = "no end of the answer within 3 s";
            } else if (!raw->empty()) {
                const int status = starts_with(*raw, "HTTP/1.1 ") && raw->size() >= 12 ? std::atoi(raw->substr(9, 3).c_str()) : 0;
                if (status < 100) problem = "not an HTTP answer: " + raw->substr(0, 60);
                else if (status >= 500) problem = "answered " + std::to_string(status);
                else if (foreign && status < 400) problem = "a foreign Host got " + std::to_string(status);
                ++answered;
            }
            if (!problem.empty()) {
                std::lock_guard<std::mutex> lock(mutex);
                if (problems.size() < 10) problems.push_back(problem + " for " + nlohmann::json(request).dump(-1, ' ', true).substr(0, 300));
            }
        }
    };
    std::vector<std::thread> clients;
    for (int id = 0; id < 8; ++id) clients.emplace_back(client, id);
    for (auto& c : clients) c.join();
    CHECK_MESSAGE(problems.empty(), joined(problems));
    CHECK(answered.load() >= 1000);
    CHECK(evil_sent.load() >= 500);
    const auto health = http_get(port, "/healthz");
    REQUIRE(health);
    CHECK(health->status == 200);
    CHECK(server.live_streams() == 0);
}

TEST_CASE("row 34, proc_setsid_escape: azops run stops a process that left the group, while ChildProcess alone does not wait for it") {
    // The library: run() returns once the leader is gone and its drain time is up, although the
    // escaped process still holds the output pipe; stopping it is the program's part (subreaper).
    azops::StopPolicy policy;
    policy.drain_after_exit = 200ms;
    auto child = azops::ChildProcess::spawn({"sh", "-c", "setsid sleep 300 & echo escaped $!; exit 0"});
    std::string output;
    const auto status = child.run([&](std::string_view bytes) { output.append(bytes); }, policy);
    CHECK(status.code == 0);
    REQUIRE(starts_with(output, "escaped "));
    const pid_t escaped = static_cast<pid_t>(std::stol(output.substr(8)));
    CHECK(::getsid(escaped) == escaped);  // it did leave: its own session, out of reach of the group's signals
    ::kill(escaped, SIGKILL);

    // The program: azops run is the escaped process's subreaper, and stops it when the command ends.
    ScratchDir dir;
    HelperProcess azops({AZOPS_CLI_PATH, "run", "--no-serve", "--status-file", (dir / kStatusName).string(), "--", "sh", "-c",
                         "setsid sleep 300 & echo escaped $!; exit 0"},
                        true);
    const auto line = azops.next_line(10s);
    REQUIRE(line);
    REQUIRE(starts_with(*line, "escaped "));
    const pid_t left = static_cast<pid_t>(std::stol(line->substr(8)));
    const auto exited = azops.wait_exit(20s);
    REQUIRE_MESSAGE(exited, "azops run did not finish within 20 s");
    CHECK(WIFEXITED(*exited));
    CHECK(WEXITSTATUS(*exited) == 0);
    const bool gone = ::kill(left, 0) != 0 && errno == ESRCH;
    CHECK_MESSAGE(gone, "the process that left the group (pid " << left << ") still runs after azops exited");
    if (!gone) ::kill(left, SIGKILL);
}

// A bar redrawn with '\r' (wget's, curl's, pip's on a terminal) may not end its line for minutes:
// each drawing reaches the tracker as it comes (LineSplitter's redraws, Tracker::log_redraw). The
// drawings come 100 ms apart and the tracker is looked at after each read, so seeing 45 distinct
// ones proves each arrived within its 100 ms, without timing anything.
TEST_CASE("row 36, proc_cr_streaming_latency: carriage-return progress updates reach the tracker before their line ends") {
    ScratchDir dir;
    azops::TrackerOptions options;
    options.status_file = dir / kStatusName;
    azops::Tracker tracker(options);
    tracker.begin("setup-waa");
    tracker.operation("windows_boot", 8);
    auto child = azops::ChildProcess::spawn(
        {"sh", "-c",
         "i=0; while [ $i -lt 50 ]; do i=$((i+1)); "
         "printf '\\rwin11x64.iso        %d%%[=====>      ]   %dM  118MB/s    eta 1m 27s' $((i*2)) $((i*120)); "
         "sleep 0.1; done; echo"});
    azops::LineSplitter splitter;
    std::set<std::string> seen;
    bool line_ended = false;
    child.run([&](std::string_view bytes) {
        tracker.log_chunk(bytes, splitter);
        line_ended = line_ended || bytes.find('\n') != std::string_view::npos;
        const auto s = tracker.snapshot();
        if (!line_ended && s.log_partial && !s.log_tail.empty()) seen.insert(s.log_tail.back());
    });
    CHECK_MESSAGE(seen.size() >= 45, seen.size() << " of 50 updates reached the tracker before the line ended");
    const auto s = tracker.snapshot();
    CHECK_FALSE(s.log_partial);
    CHECK(s.log_tail.size() == 1);
    CHECK(s.log_tail.back().find("100%") != std::string::npos);
}

TEST_CASE("row 37, proc_fd_and_signal_hygiene: a child spawned while dashboard clients are connected gets fds 0-2, SIGPIPE default") {
    ScratchDir dir;
    const fs::path path = dir / kStatusName;
    REQUIRE(azops::write_file_atomically(path, read_file(kData + "/faults/azure_ops_status.json")).ok);
    azops::StatusServer server(std::make_shared<azops::FileFeed>(path), any_port());
    const int port = server.start();
    SseStream stream(port);  // a worker holds this accepted socket
    REQUIRE(stream.next(5000ms));
    const int idle = connect_loopback(port);  // and one waits on this idle keep-alive connection
    REQUIRE(idle >= 0);
    struct sigaction current {};
    ::sigaction(SIGPIPE, nullptr, &current);
    const bool sigpipe_ignored = current.sa_handler == SIG_IGN;
    CHECK(sigpipe_ignored);  // cpp-httplib's Server ignores SIGPIPE for the whole process

    std::string output;
    auto child = azops::ChildProcess::spawn({"sh", "-c", "ls -1 /proc/$$/fd; grep SigIgn /proc/$$/status"});
    const auto status = child.run([&](std::string_view bytes) { output.append(bytes); });
    ::close(idle);
    CHECK(status.code == 0);
    CHECK_MESSAGE(starts_with(output, "0\n1\n2\nSigIgn:"), output);
    const auto ign = output.find("SigIgn:");
    REQUIRE(ign != std::string::npos);
    const unsigned long long mask = std::stoull(output.substr(ign + 7), nullptr, 16);
    CHECK((mask & (1ULL << (SIGPIPE - 1))) == 0);
}

TEST_CASE("row 38, proc_sigpipe_parent: azops run whose reader goes away keeps tracking its command to the end") {
    for (const bool serve : {false, true}) {
        CAPTURE(serve);
        ScratchDir dir;
        const fs::path status = dir / kStatusName;
        std::vector<std::string> args = {AZOPS_CLI_PATH, "run", "--task", "build", "--status-file", status.string(), "--no-open"};
        if (serve) {
            args.insert(args.end(), {"--port", "0"});
        } else {
            args.emplace_back("--no-serve");
        }
        args.insert(args.end(), {"--", "sh", "-c",
                                 "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); echo \"#9 $i.0 Collecting package-$i\"; done; "
                                 "echo finished"});
        HelperProcess azops(args, true);
        REQUIRE(azops.next_line(10s));  // it echoes the command's output to us...
        azops.close_stdout();           // ...until nobody reads it any more, as with `azops run ... | head -1`
        const auto exited = azops.wait_exit(30s);
        REQUIRE_MESSAGE(exited, "azops run did not finish within 30 s once its stdout was closed");
        CHECK(WIFEXITED(*exited));
        CHECK(WEXITSTATUS(*exited) == 0);
        const auto parsed = azops::parse_status(read_file(status));
        REQUIRE(parsed.status);
        CHECK(parsed.status->state == "succeeded");
        REQUIRE_FALSE(parsed.status->log_tail.empty());
        CHECK(parsed.status->log_tail.back() == "finished");
    }
}

}  // TEST_SUITE("faults: table rows")
