// azops_cli/stop_control.hpp — one place where every reason to stop a task arrives (the page's
// Stop button, Ctrl-C, SIGTERM, an idle VM deallocated under a stalled task), and the thread that
// turns SIGINT/SIGTERM into such requests.
//
// A request runs the current hook (stop a child process, cancel an az command) and wakes whoever
// waits in `wait_until`; it never blocks. A request is `urgent` when it must not wait for a safe
// point (a second Ctrl-C, SIGTERM).
// Thread-safety: every member may be called from any thread (not from a signal handler: signals
// reach StopControl through SignalWatcher's thread).
// Errors: SignalWatcher's constructor throws std::system_error when no thread can be started.
#pragma once

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include <pthread.h>
#include <signal.h>

namespace azops_cli {

enum class StopCause { none, user, signal, idle_deallocated };

class StopControl {
public:
    using Hook = std::function<void(bool urgent)>;

    // Asks the task to stop. A later request may only make it more urgent.
    void request(StopCause cause, std::string reason, bool urgent = false) {
        Hook hook;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            if (cause_ == StopCause::none) {
                cause_ = cause;
                reason_ = std::move(reason);
            }
            urgent_ = urgent_ || urgent;
            ++generation_;
            hook = hook_;
        }
        changed_.notify_all();
        if (hook) hook(urgent);
    }

    bool requested() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return cause_ != StopCause::none;
    }
    bool urgent() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return urgent_;
    }
    StopCause cause() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return cause_;
    }
    std::string reason() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return reason_;
    }
    // Counts requests, so that a waiter can tell a new one from one it has already handled.
    std::uint64_t generation() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return generation_;
    }

    // Sleeps until `deadline` or until a request newer than generation `seen`; true when a request
    // woke it.
    bool wait_until(std::chrono::steady_clock::time_point deadline, std::uint64_t seen) const {
        std::unique_lock<std::mutex> lock(mutex_);
        return changed_.wait_until(lock, deadline, [&] { return generation_ != seen; });
    }

    template <typename Rep, typename Period>
    bool wait_for(std::chrono::duration<Rep, Period> d, std::uint64_t seen) const {
        return wait_until(std::chrono::steady_clock::now() +
                              std::chrono::duration_cast<std::chrono::steady_clock::duration>(d),
                          seen);
    }

    // What to do on a request while the hook is set, e.g. stop the running child. When a request
    // came before the hook was set, the hook runs at once.
    void set_hook(Hook hook) {
        bool already = false;
        bool urgent = false;
        {
            std::lock_guard<std::mutex> lock(mutex_);
            hook_ = hook;
            already = cause_ != StopCause::none;
            urgent = urgent_;
        }
        if (already && hook) hook(urgent);
    }

    void clear_hook() {
        std::lock_guard<std::mutex> lock(mutex_);
        hook_ = nullptr;
    }

private:
    mutable std::mutex mutex_;
    mutable std::condition_variable changed_;
    StopCause cause_ = StopCause::none;
    bool urgent_ = false;
    std::string reason_;
    std::uint64_t generation_ = 0;
    Hook hook_;
};

// Sets a hook for as long as it lives.
class ScopedStopHook {
public:
    ScopedStopHook(StopControl& stop, StopControl::Hook hook) : stop_(stop) { stop_.set_hook(std::move(hook)); }
    ~ScopedStopHook() { stop_.clear_hook(); }
    ScopedStopHook(const ScopedStopHook&) = delete;
    ScopedStopHook& operator=(const ScopedStopHook&) = delete;

private:
    StopControl& stop_;
};

// Blocks SIGINT and SIGTERM in this thread and every thread started after it, and takes them with
// sigwait() on a thread of its own: a first Ctrl-C asks for a stop (which may wait for a safe
// point), a second one or SIGTERM asks for an urgent stop. Create it in main() before any other
// thread exists.
class SignalWatcher {
public:
    explicit SignalWatcher(StopControl& stop) : stop_(stop) {
        sigemptyset(&set_);
        sigaddset(&set_, SIGINT);
        sigaddset(&set_, SIGTERM);
        sigaddset(&set_, wake_signal);
        pthread_sigmask(SIG_BLOCK, &set_, &previous_);
        // Writing into a closed pipe (`setup_waa | head`) must not kill the task half way.
        std::signal(SIGPIPE, SIG_IGN);
        thread_ = std::thread([this] { loop(); });
    }

    ~SignalWatcher() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quitting_ = true;
        }
        pthread_kill(thread_.native_handle(), wake_signal);
        thread_.join();
        pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
    }

    SignalWatcher(const SignalWatcher&) = delete;
    SignalWatcher& operator=(const SignalWatcher&) = delete;

private:
    static constexpr int wake_signal = SIGUSR2;

    void loop() {
        while (true) {
            int signal = 0;
            if (sigwait(&set_, &signal) != 0) continue;
            int count = 0;
            {
                std::lock_guard<std::mutex> lock(mutex_);
                if (quitting_) return;
                if (signal == wake_signal) continue;
                count = ++interrupts_;
            }
            if (signal == SIGTERM) {
                stop_.request(StopCause::signal, "terminated (SIGTERM)", true);
            } else {
                stop_.request(StopCause::signal, "interrupted (Ctrl-C)", count > 1);
            }
        }
    }

    StopControl& stop_;
    sigset_t set_{};
    sigset_t previous_{};
    mutable std::mutex mutex_;
    bool quitting_ = false;
    int interrupts_ = 0;
    std::thread thread_;
};

}  // namespace azops_cli
