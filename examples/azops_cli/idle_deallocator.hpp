// azops_cli/idle_deallocator.hpp — `--idle-deallocate MINUTES`: a VM left allocated after its
// task ended (or while the task is stalled) is deallocated after MINUTES, with warnings first.
//
// Owns the countdown and the deallocation: it watches the Tracker's status, and when the task has
// ended (or its status says `stalled_seconds`) while the VM is still allocated (running, starting,
// stopping, stopped: all billed), it sets the status's `idle_deallocate_at`, warns at 15 and 5
// minutes left (notice and terminal), then deallocates — `az vm deallocate`, never a plain stop,
// which keeps billing — and says so. A stall that ends calls the countdown off. Time is the
// Tracker's clock, so a simulation counts down on its scaled clock.
// Thread-safety: the monitor runs on a thread of its own; `settle` may be called from any thread.
// Errors: a failed deallocation becomes a notice, a terminal message and `failed()`; nothing throws
// after construction but std::bad_alloc.
#pragma once

#include <azops/azure.hpp>
#include <azops/tracker.hpp>

#include "stop_control.hpp"
#include "terminal_progress.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace azops_cli {

struct IdleDeallocateOptions {
    double minutes = 120;
    std::string vm_name;         // for the messages
    std::string manual_command;  // the az command a user can run by hand
    // Runs the deallocation (az vm deallocate); absent: nothing to run, the deallocation is simulated.
    std::function<azops::AzCommandResult()> deallocate;
    // The VM is simulated: after the deallocation its state moves to deallocating, then deallocated.
    bool simulated_vm = false;
    // After a real deallocation: ask for the VM's state now rather than at the next poll, and how
    // many answers have come so far (two answers after the request settle it, whatever they say).
    std::function<void()> poll_now;
    std::function<std::uint64_t()> poll_count;
    std::chrono::milliseconds tick{100};  // real time between looks at the status
    double simulated_deallocation_seconds = 75;
};

class IdleDeallocator {
public:
    using Clock = std::chrono::system_clock;

    IdleDeallocator(azops::Tracker& tracker, azops::WallClock clock, StopControl& stop, TerminalProgress& terminal,
                    IdleDeallocateOptions options)
        : tracker_(tracker), clock_(std::move(clock)), stop_(stop), terminal_(terminal), options_(std::move(options)),
          thread_([this] { loop(); }) {}

    ~IdleDeallocator() {
        {
            std::lock_guard<std::mutex> lock(mutex_);
            quitting_ = true;
        }
        changed_.notify_all();
        thread_.join();
    }

    IdleDeallocator(const IdleDeallocator&) = delete;
    IdleDeallocator& operator=(const IdleDeallocator&) = delete;

    // After the task ended: waits until nothing is left to do (the VM is not allocated, or its
    // deallocation went through or failed). Returns false when a new stop request (Ctrl-C) came
    // first: the countdown is then abandoned and the status says so.
    bool settle() {
        const std::uint64_t seen = stop_.generation();
        while (true) {
            {
                std::unique_lock<std::mutex> lock(mutex_);
                if (quiet_ && looked_after_end_) return true;
            }
            if (stop_.wait_for(std::chrono::milliseconds(50), seen)) {
                abandon();
                return false;
            }
        }
    }

    bool failed() const {
        std::lock_guard<std::mutex> lock(mutex_);
        return failed_;
    }

private:
    static bool allocated(const std::optional<std::string>& state) {
        return state && (*state == "running" || *state == "starting" || *state == "stopping" || *state == "stopped");
    }

    std::string at_text(Clock::time_point t) const {
        const std::time_t secs = Clock::to_time_t(t);
        std::tm utc{};
        gmtime_r(&secs, &utc);
        char buf[32];
        std::strftime(buf, sizeof buf, "%H:%M:%S UTC", &utc);
        return buf;
    }

    static std::string minutes_text(double minutes) {
        char buf[32];
        if (minutes >= 1 && std::abs(minutes - std::round(minutes)) < 1e-9) std::snprintf(buf, sizeof buf, "%.0f min", minutes);
        else std::snprintf(buf, sizeof buf, "%.2g min", minutes);
        return buf;
    }

    void say(const std::string& text) {
        tracker_.notice(text);
        terminal_.message(text);
    }

    void loop() {
        std::unique_lock<std::mutex> lock(mutex_);
        while (!quitting_) {
            const bool abandoning = abandoning_;
            lock.unlock();
            if (abandoning) drop_countdown();
            else look();
            lock.lock();
            if (abandoning) return;
            changed_.wait_for(lock, options_.tick, [this] { return quitting_ || abandoning_; });
        }
    }

    // One look at the status; called on the monitor's thread only.
    void look() {
        const azops::OpsStatus s = tracker_.snapshot();
        const bool ended = s.state == "succeeded" || s.state == "failed" || s.state == "cancelled";
        const bool idle = ended || s.stalled_seconds.has_value();
        const auto now = clock_();
        bool quiet = false;
        if (failed_) {
            quiet = true;  // said so already; a second try would fail the same way
        } else if (requested_) {
            quiet = finish_deallocation(s, now);
        } else if (!deadline_) {
            if (idle && allocated(s.vm_state)) begin_countdown(s, now, ended);
            else quiet = true;
        } else if (!idle || !allocated(s.vm_state)) {
            deadline_.reset();
            tracker_.set_idle_deallocate_at(std::nullopt);
            say(allocated(s.vm_state) ? "output resumed: the idle deallocation is called off"
                                      : "the VM is no longer allocated: the idle deallocation is called off");
            quiet = true;
        } else {
            count_down(s, now);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        quiet_ = quiet;
        if (ended) looked_after_end_ = true;
    }

    void begin_countdown(const azops::OpsStatus& s, Clock::time_point now, bool ended) {
        deadline_ = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options_.minutes * 60));
        warned_15_ = options_.minutes <= 15;
        warned_5_ = options_.minutes <= 5;
        tracker_.set_idle_deallocate_at(*deadline_);
        std::string rate;
        if (s.hourly_rate_usd) {
            char buf[48];
            std::snprintf(buf, sizeof buf, " at $%.3f/h", *s.hourly_rate_usd);
            rate = buf;
        }
        const std::string why = !ended                  ? "the task is stalled"
                                : s.state == "cancelled" ? "the task was cancelled"
                                                         : "the task has " + s.state;
        say(why + " and VM " + options_.vm_name + " is still allocated (billed" + rate + "): it will be deallocated at " +
            at_text(*deadline_) + ", in " + minutes_text(options_.minutes) + " (--idle-deallocate)");
    }

    void count_down(const azops::OpsStatus& s, Clock::time_point now) {
        const double left = std::chrono::duration<double>(*deadline_ - now).count();
        if (left <= 0) {
            deallocate(s);
        } else if (!warned_5_ && left <= 5 * 60) {
            warned_5_ = warned_15_ = true;
            say("VM " + options_.vm_name + " will be deallocated in 5 min, at " + at_text(*deadline_));
        } else if (!warned_15_ && left <= 15 * 60) {
            warned_15_ = true;
            say("VM " + options_.vm_name + " will be deallocated in 15 min, at " + at_text(*deadline_));
        }
    }

    void deallocate(const azops::OpsStatus& s) {
        const bool stalled = s.state == "running";
        requested_at_ = clock_();
        if (options_.deallocate) {
            const azops::AzCommandResult result = options_.deallocate();
            if (!result.ok()) {
                {
                    std::lock_guard<std::mutex> lock(mutex_);
                    failed_ = true;
                }
                deadline_.reset();
                tracker_.set_idle_deallocate_at(std::nullopt);
                say("the idle deallocation failed: " + result.error.value_or("az failed") +
                    ". The VM is still allocated and billed: run " + options_.manual_command);
                return;
            }
        }
        if (options_.simulated_vm) {
            tracker_.set_vm(azops::VmInfo{{}, {}, {}, {}, std::string("deallocating"), {}});
        } else {
            if (options_.poll_count) polls_at_request_ = options_.poll_count();
            if (options_.poll_now) options_.poll_now();
        }
        {
            std::lock_guard<std::mutex> lock(mutex_);
            requested_ = true;
        }
        tracker_.set_idle_deallocate_at(std::nullopt);
        say("idle for " + minutes_text(options_.minutes) + ": deallocating VM " + options_.vm_name +
            " (az vm deallocate); compute billing stops once it is deallocated");
        if (stalled) {
            stop_.request(StopCause::idle_deallocated, "stalled: the VM was deallocated after " +
                                                           minutes_text(options_.minutes) + " without progress (--idle-deallocate)",
                          true);
        }
    }

    // True once the deallocation is under way as far as this program waits for it: a simulated VM
    // reaches `deallocated`; a real one shows `deallocating` or `deallocated` at a poll.
    bool finish_deallocation(const azops::OpsStatus& s, Clock::time_point now) {
        if (options_.simulated_vm) {
            const double since = std::chrono::duration<double>(now - requested_at_).count();
            if (since < options_.simulated_deallocation_seconds) return false;
            if (s.vm_state != std::optional<std::string>("deallocated")) {
                tracker_.set_vm(azops::VmInfo{{}, {}, {}, {}, std::string("deallocated"), {}});
                say("VM " + options_.vm_name + " is deallocated: compute is no longer billed");
            }
            return true;
        }
        return s.vm_state == std::optional<std::string>("deallocating") ||
               s.vm_state == std::optional<std::string>("deallocated") || !options_.poll_count ||
               options_.poll_count() >= polls_at_request_ + 2;
    }

    // Asks the monitor to drop its countdown and waits (briefly) until it has.
    void abandon() {
        std::unique_lock<std::mutex> lock(mutex_);
        abandoning_ = true;
        changed_.notify_all();
        changed_.wait_for(lock, std::chrono::seconds(2), [this] { return abandoned_ || quitting_; });
    }

    // On the monitor's thread: the countdown ends without a deallocation.
    void drop_countdown() {
        if (deadline_ && !requested_) {
            deadline_.reset();
            tracker_.set_idle_deallocate_at(std::nullopt);
            tracker_.notice("the idle deallocation was abandoned (Ctrl-C); the VM is still allocated and billed: run " +
                            options_.manual_command);
        }
        std::lock_guard<std::mutex> lock(mutex_);
        abandoned_ = true;
        changed_.notify_all();
    }

    azops::Tracker& tracker_;
    const azops::WallClock clock_;
    StopControl& stop_;
    TerminalProgress& terminal_;
    const IdleDeallocateOptions options_;

    // The monitor thread's own state (`requested_` and `failed_` below are written by it alone).
    std::optional<Clock::time_point> deadline_;
    bool warned_15_ = false;
    bool warned_5_ = false;
    Clock::time_point requested_at_{};
    std::uint64_t polls_at_request_ = 0;

    mutable std::mutex mutex_;  // guards what follows
    std::condition_variable changed_;
    bool quitting_ = false;
    bool abandoning_ = false;
    bool abandoned_ = false;
    bool quiet_ = false;
    bool looked_after_end_ = false;
    bool requested_ = false;
    bool failed_ = false;
    std::thread thread_;  // last: it starts once everything above exists
};

}  // namespace azops_cli
