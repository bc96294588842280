// azops/process.hpp — running a child command in its own process group, streaming its output
// lines, and stopping it.
//
// Owns: spawning (posix_spawnp) with stdout and stderr merged into one pipe, so neither can fill and
// deadlock; the child's process group (so a stop reaches its whole tree); SIGPIPE and the other
// signals reset to their defaults and every file descriptor above 2 closed in the child (a server
// in this process ignores SIGPIPE and has sockets open); reading until the child and its pipe are
// done; stopping the group with SIGTERM, then SIGKILL after a grace period; reaping every child.
// A descendant that leaves the group (setsid, a daemon) is out of its reach: `run` stops waiting
// for the output it still holds after `drain_after_exit`, and leaves it running. A program that
// must stop those too becomes their subreaper (PR_SET_CHILD_SUBREAPER), as `azops run` does.
// Thread-safety: a ChildProcess is used by one thread; `request_stop()` may be called from any
// thread and from a signal handler (it only writes one byte to a pipe).
// Errors: `ChildProcess::spawn` throws SpawnError with a clear message (command not found, not
// executable, ...); nothing else throws.
#pragma once

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

// POSIX leaves declaring it to the program; glibc's <unistd.h> happens to declare it as well.
extern char** environ;  // NOLINT(readability-redundant-declaration)

namespace azops {

class SpawnError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// How a child ended: its exit code, or the signal that killed it.
struct ExitStatus {
    int code = 0;                 // exit code; 128 + signal when killed by a signal (as shells report it)
    std::optional<int> signal;    // the signal, when killed by one
    bool stop_requested = false;  // a stop was requested before it ended

    std::string describe() const {
        if (signal) {
            const char* name = ::sigdescr_np(*signal);  // strsignal without its shared buffer
            return "killed by signal " + std::to_string(*signal) +
                   (name != nullptr ? std::string(" (") + name + ")" : "");
        }
        return "exited with code " + std::to_string(code);
    }
};

struct StopPolicy {
    std::chrono::milliseconds grace{10000};        // SIGTERM → SIGKILL
    std::chrono::milliseconds drain_after_exit{2000};  // leftover group members holding the pipe
};

namespace detail {

inline ExitStatus exit_status_from_wait(int wstatus) {
    ExitStatus s;
    if (WIFSIGNALED(wstatus)) {
        s.signal = WTERMSIG(wstatus);
        s.code = 128 + *s.signal;
    } else if (WIFEXITED(wstatus)) {
        s.code = WEXITSTATUS(wstatus);
    }
    return s;
}

inline void close_fd(int& fd) noexcept {
    if (fd >= 0) ::close(fd);
    fd = -1;
}

// argv as the NULL-terminated array exec wants; the strings must outlive it.
inline std::vector<char*> c_argv(const std::vector<std::string>& argv) {
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    return args;
}

// RAII for the spawn attribute objects, so every exit path releases them.
struct SpawnSetup {
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    SpawnSetup() {
        posix_spawn_file_actions_init(&actions);
        posix_spawnattr_init(&attr);
    }

    // The child starts with the signals a program embedding azops may ignore or block (a server
    // ignores SIGPIPE) back at their defaults, and nothing blocked. Returns the flags to set.
    short reset_signals() {
        sigset_t defaults;
        sigemptyset(&defaults);
        for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGCHLD, SIGTTOU, SIGTTIN}) sigaddset(&defaults, sig);
        sigset_t empty;
        sigemptyset(&empty);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setsigmask(&attr, &empty);
        return POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
    }
    ~SpawnSetup() {
        posix_spawn_file_actions_destroy(&actions);
        posix_spawnattr_destroy(&attr);
    }
    SpawnSetup(const SpawnSetup&) = delete;
    SpawnSetup& operator=(const SpawnSetup&) = delete;
};

}  // namespace detail

class ChildProcess {
public:
    // Starts `argv` (argv[0] looked up on PATH) in a new process group, its stdin from /dev/null
    // unless `inherit_stdin`, stdout and stderr into one pipe that `run` reads.
    static ChildProcess spawn(const std::vector<std::string>& argv, bool inherit_stdin = false) {
        if (argv.empty() || argv.front().empty()) throw SpawnError("no command given");
        ChildProcess child;
        std::array<int, 2> out{};
        if (::pipe2(out.data(), O_CLOEXEC) != 0) {
            throw SpawnError(std::string("cannot create a pipe: ") + std::generic_category().message(errno));
        }
        child.read_fd_ = out[0];
        widen_pipe(out[0]);
        if (::pipe2(child.wake_.data(), O_CLOEXEC | O_NONBLOCK) != 0) {
            const int err = errno;
            ::close(out[1]);
            throw SpawnError(std::string("cannot create a pipe: ") + std::generic_category().message(err));
        }
        const int err = start(argv, out[1], inherit_stdin, child.pid_);
        ::close(out[1]);
        if (err != 0) throw SpawnError(spawn_error_message(argv.front(), err));
        return child;
    }

    ChildProcess(ChildProcess&& other) noexcept { *this = std::move(other); }
    ChildProcess& operator=(ChildProcess&& other) noexcept {
        if (this != &other) {
            release();
            pid_ = other.pid_;
            read_fd_ = other.read_fd_;
            wake_[0] = other.wake_[0];
            wake_[1] = other.wake_[1];
            other.pid_ = -1;
            other.read_fd_ = other.wake_[0] = other.wake_[1] = -1;
        }
        return *this;
    }
    ChildProcess(const ChildProcess&) = delete;
    ChildProcess& operator=(const ChildProcess&) = delete;

    // Whatever happens, no child is left running or unreaped.
    ~ChildProcess() { release(); }

    pid_t pid() const noexcept { return pid_; }

    // Asks `run` to stop the child's group. Async-signal-safe.
    void request_stop() const noexcept {
        const char byte = 1;
        [[maybe_unused]] const ssize_t n = ::write(wake_[1], &byte, 1);
    }

    // Reads the merged output, calling `on_chunk(std::string_view bytes)` as it arrives, until the
    // child has exited and its output is drained; stops the group when `request_stop` was called.
    template <typename OnChunk>
    ExitStatus run(OnChunk&& on_chunk, const StopPolicy& policy = {}) {
        using Clock = std::chrono::steady_clock;
        constexpr auto never = Clock::time_point::max();
        std::optional<ExitStatus> exit;
        Clock::time_point kill_at = never;
        Clock::time_point drain_deadline = never;
        bool stop_requested = false;
        std::vector<char> buffer(read_size);
        while (true) {
            std::array<pollfd, 2> fds{{{read_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}}};
            const nfds_t count = read_fd_ >= 0 ? 2 : 1;
            pollfd* set = read_fd_ >= 0 ? fds.data() : fds.data() + 1;
            const int ready = ::poll(set, count, 100);
            if (ready < 0 && errno != EINTR) break;
            if (read_fd_ >= 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) {
                const ssize_t n = ::read(read_fd_, buffer.data(), buffer.size());
                if (n > 0) on_chunk(std::string_view(buffer.data(), static_cast<std::size_t>(n)));
                else if (n == 0 || errno != EINTR) detail::close_fd(read_fd_);
            }
            if ((fds[1].revents & POLLIN) != 0 && !stop_requested) {
                drain_wake_pipe();
                stop_requested = true;
                signal_group(SIGTERM);
                kill_at = Clock::now() + policy.grace;
            }
            if (Clock::now() >= kill_at) {
                signal_group(SIGKILL);
                kill_at = never;
            }
            if (!exit) exit = try_reap();
            if (exit && read_fd_ < 0) break;
            if (exit && drain_deadline == never) drain_deadline = Clock::now() + policy.drain_after_exit;
            if (Clock::now() >= drain_deadline) {
                // The leader is gone but members of its group still hold the pipe: stop them too.
                signal_group(SIGKILL);
                detail::close_fd(read_fd_);
                break;
            }
        }
        if (!exit) exit = reap_blocking();
        exit->stop_requested = stop_requested;
        pid_ = -1;
        return *exit;
    }

private:
    ChildProcess() = default;

    static int start(const std::vector<std::string>& argv, int out_fd, bool inherit_stdin, pid_t& pid) {
        detail::SpawnSetup setup;
        if (!inherit_stdin) posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 1);
        posix_spawn_file_actions_adddup2(&setup.actions, out_fd, 2);
        posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3);
        const short flags = setup.reset_signals();
        posix_spawnattr_setpgroup(&setup.attr, 0);
        posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | flags);
        std::vector<char*> args = detail::c_argv(argv);
        return posix_spawnp(&pid, args[0], &setup.actions, &setup.attr, args.data(), environ);
    }

    // A fast writer fills the default 64 KiB pipe in microseconds and then waits for each of our
    // reads: with room for 1 MiB it runs ahead instead, a reader held up for a moment (a busy
    // machine, a status write) costs it nothing, and one read takes up to `read_size` at once.
    // Best effort: the default size still works.
    static void widen_pipe([[maybe_unused]] int fd) noexcept {
#if defined(F_SETPIPE_SZ)
        ::fcntl(fd, F_SETPIPE_SZ, 1 << 20);
#endif
    }

    static std::string spawn_error_message(const std::string& command, int err) {
        if (err == ENOENT) return "command not found: " + command;
        if (err == EACCES) return "permission denied (not executable?): " + command;
        return "cannot start " + command + ": " + std::generic_category().message(err);
    }

    void signal_group(int sig) const noexcept {
        // The group outlives its leader; signal it before the leader is reaped so the id stays ours.
        if (pid_ > 0) ::kill(-pid_, sig);
    }

    void drain_wake_pipe() const noexcept {
        std::array<char, 64> sink{};
        while (::read(wake_[0], sink.data(), sink.size()) > 0) {
        }
    }

    // Not const, though it changes no member: a reaped child is gone, and its id may soon name another.
    std::optional<ExitStatus> try_reap() noexcept {  // NOLINT(readability-make-member-function-const)
        int wstatus = 0;
        const pid_t r = ::waitpid(pid_, &wstatus, WNOHANG);
        if (r == pid_) return detail::exit_status_from_wait(wstatus);
        return std::nullopt;
    }

    ExitStatus reap_blocking() noexcept {  // NOLINT(readability-make-member-function-const): as try_reap
        int wstatus = 0;
        while (::waitpid(pid_, &wstatus, 0) < 0 && errno == EINTR) {
        }
        return detail::exit_status_from_wait(wstatus);
    }

    void release() noexcept {
        if (pid_ > 0) {
            signal_group(SIGKILL);
            reap_blocking();
            pid_ = -1;
        }
        detail::close_fd(read_fd_);
        detail::close_fd(wake_[0]);
        detail::close_fd(wake_[1]);
    }

    static constexpr std::size_t read_size = std::size_t{256} * 1024;  // a quarter of the widened pipe: 4x fewer wakeups

    pid_t pid_ = -1;
    int read_fd_ = -1;
    std::array<int, 2> wake_{-1, -1};
};

}  // namespace azops
