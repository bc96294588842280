// azops_cli/simulation.hpp — replaying a long operation quickly: a scaled clock, deterministic
// random numbers, a script of timed events and the player that feeds them to a Tracker.
//
// A simulation is written as a Script: the output lines a real run prints, the VM states it sees and
// the operations it goes through, each at a simulated time. The Player replays it on a ScaledClock
// (simulated time = real time x speed) and hands every line to `Tracker::log`, so it is read back by
// the same parsers as real output. The same seed gives the same script.
// Thread-safety: ScaledClock is immutable and may be read from any thread; Rng and Script are plain
// values; a Player is used by one thread, and StopControl (stop_control.hpp) wakes it from others.
// Errors: nothing throws but std::bad_alloc.
#pragma once

#include <azops/tracker.hpp>

#include "stop_control.hpp"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace azops_cli::sim {

// SplitMix64. The standard distributions give different numbers with different standard
// libraries, and a seed must give the same simulation wherever it is built.
class Rng {
public:
    explicit Rng(std::uint64_t seed) noexcept : state_(seed) {}

    std::uint64_t next() noexcept {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }

    // Uniform in [lo, hi).
    double uniform(double lo, double hi) noexcept {
        return lo + (hi - lo) * static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);
    }

    // Uniform in [lo, hi], both included.
    int between(int lo, int hi) noexcept {
        if (hi <= lo) return lo;
        return lo + static_cast<int>(next() % static_cast<std::uint64_t>(hi - lo + 1));
    }

    bool chance(double p) noexcept { return uniform(0, 1) < p; }

    std::string hex(std::size_t digits) {
        static constexpr char alphabet[] = "0123456789abcdef";
        std::string out;
        out.reserve(digits);
        for (std::size_t i = 0; i < digits; ++i) out += alphabet[next() & 0xF];
        return out;
    }

    template <typename T>
    const T& pick(const std::vector<T>& items) noexcept {
        return items[static_cast<std::size_t>(next() % items.size())];
    }

private:
    std::uint64_t state_;
};

// Simulated time runs `speed` times faster than real time from the moment of construction, and
// the simulated wall clock starts at the real one. Used as the Tracker's clock, it makes elapsed
// time, ETA and cost read as they would in a real run.
class ScaledClock {
public:
    using SystemClock = std::chrono::system_clock;
    using SteadyClock = std::chrono::steady_clock;

    explicit ScaledClock(double speed)
        : speed_(speed > 0 && std::isfinite(speed) ? speed : 1.0),
          wall_start_(SystemClock::now()),
          steady_start_(SteadyClock::now()) {}

    // Simulated seconds since the start.
    double seconds() const {
        return std::chrono::duration<double>(SteadyClock::now() - steady_start_).count() * speed_;
    }

    SystemClock::time_point now() const { return wall_at(seconds()); }

    SystemClock::time_point wall_at(double simulated_seconds) const {
        return wall_start_ + std::chrono::duration_cast<SystemClock::duration>(
                                 std::chrono::duration<double>(simulated_seconds));
    }

    // The real moment at which the simulated clock shows `simulated_seconds`.
    SteadyClock::time_point real_deadline(double simulated_seconds) const {
        return steady_start_ + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(simulated_seconds / speed_));
    }

    // A clock function for TrackerOptions and ServerOptions; the ScaledClock must outlive it.
    azops::WallClock function() const {
        return [this] { return now(); };
    }

private:
    double speed_;
    SystemClock::time_point wall_start_;
    SteadyClock::time_point steady_start_;
};

// One thing that happens in a simulated run, at `at` simulated seconds from the script's start.
struct Event {
    enum class Kind {
        operation,   // a new operation: `text`, `number` its planned steps (0: its output says)
        line,        // a raw output line (ANSI, '\r' and all), for Tracker::log
        vm,          // what the program learns of its VM
        step,        // step `number` of `total`, `text` the detail (operations without a parser)
        phase,       // phase `text`, detail `detail`
        task_begin,  // a benchmark task starts: stopping now would leave it half done
        task_end,    // a benchmark task is cleaned up: `text` is domain/id, a safe place to stop
        fail,        // the operation fails with the error `text` (a real run's command failing)
        end,         // the end of the script (a real run's command exiting)
    };
    double at = 0;
    Kind kind = Kind::line;
    std::string text;
    std::string detail;
    int number = 0;
    int total = 0;
    azops::VmInfo vm;
};

// A script written in order: `wait` moves the cursor, every other call adds an event at it.
class Script {
public:
    double now() const noexcept { return cursor_; }
    void wait(double seconds) noexcept { cursor_ += std::max(0.0, seconds); }

    void operation(std::string name, int planned_steps = 0) {
        add(Event::Kind::operation).text = std::move(name);
        events_.back().number = planned_steps;
    }
    void line(std::string text) { add(Event::Kind::line).text = std::move(text); }
    void vm(azops::VmInfo info) { add(Event::Kind::vm).vm = std::move(info); }
    void step(int number, int total, std::string detail) {
        Event& e = add(Event::Kind::step);
        e.number = number;
        e.total = total;
        e.text = std::move(detail);
    }
    void phase(std::string name, std::string detail) {
        Event& e = add(Event::Kind::phase);
        e.text = std::move(name);
        e.detail = std::move(detail);
    }
    void task_begin() { add(Event::Kind::task_begin); }
    void task_end(std::string task) { add(Event::Kind::task_end).text = std::move(task); }
    void fail(std::string error) { add(Event::Kind::fail).text = std::move(error); }
    void end() { add(Event::Kind::end); }

    const std::vector<Event>& events() const noexcept { return events_; }
    double duration() const noexcept { return events_.empty() ? 0.0 : events_.back().at; }

private:
    Event& add(Event::Kind kind) {
        Event e;
        e.at = cursor_;
        e.kind = kind;
        events_.push_back(std::move(e));
        return events_.back();
    }

    double cursor_ = 0;
    std::vector<Event> events_;
};

// How a replay ended.
struct PlayResult {
    bool stopped = false;                     // a stop request ended it early
    bool inside_task = false;                 // stopped in the middle of a task (an urgent stop)
    std::optional<std::string> failure;       // the script's own failure (a fail event)
};

// When a stop request may end the replay.
enum class StopPolicy {
    at_once,            // immediately (setup: nothing is lost that a new run does not redo)
    between_tasks,      // after the current benchmark task is cleaned up, unless the request is urgent
};

// Replays a script on a ScaledClock into a Tracker. `on_line` sees every line too (for --show-output).
class Player {
public:
    Player(const ScaledClock& clock, azops::Tracker& tracker, StopControl& stop,
           std::function<void(std::string_view)> on_line = {})
        : clock_(clock), tracker_(tracker), stop_(stop), on_line_(std::move(on_line)) {}

    // Plays the events in [first, last) of `script`, whose time 0 is `offset` simulated seconds
    // after the clock's start. `on_wait_for_task` is called once when a stop request has to wait
    // for the current task (between_tasks).
    PlayResult play(const Script& script, double offset, StopPolicy policy,
                    const std::function<void()>& on_wait_for_task = {}) {
        PlayResult result;
        std::uint64_t seen = stop_.generation();
        bool told_waiting = false;
        for (const Event& event : script.events()) {
            const auto deadline = clock_.real_deadline(offset + event.at);
            while (true) {
                if (stop_.requested()) {
                    const bool may_stop = policy == StopPolicy::at_once || !result.inside_task || stop_.urgent();
                    if (may_stop) {
                        result.stopped = true;
                        return result;
                    }
                    if (!told_waiting) {
                        told_waiting = true;
                        if (on_wait_for_task) on_wait_for_task();
                    }
                }
                if (!stop_.wait_until(deadline, seen)) break;
                seen = stop_.generation();
            }
            apply(event, result);
            if (result.failure) return result;
        }
        return result;
    }

private:
    void apply(const Event& event, PlayResult& result) {
        using Kind = Event::Kind;
        switch (event.kind) {
            case Kind::operation: tracker_.operation(event.text, event.number); break;
            case Kind::line:
                tracker_.log(event.text);
                if (on_line_) on_line_(event.text);
                break;
            case Kind::vm: tracker_.set_vm(event.vm); break;
            case Kind::step: tracker_.step(event.number, event.total, event.text); break;
            case Kind::phase: tracker_.phase(event.text, event.detail); break;
            case Kind::task_begin: result.inside_task = true; break;
            case Kind::task_end: result.inside_task = false; break;
            case Kind::fail: result.failure = event.text; break;
            case Kind::end: break;
        }
    }

    const ScaledClock& clock_;
    azops::Tracker& tracker_;
    StopControl& stop_;
    std::function<void(std::string_view)> on_line_;
};

}  // namespace azops_cli::sim
